"""`python -m resilience.kill_switch on|off [FUNCTION] [--topology ...]`: reserved concurrency 0.

The talk's kill switch ("set function concurrency to 0"): `on` stores the function's current
reserved concurrency in a tag (`lab:kill-switch-previous`, the value or `unreserved`) and then sets
it to 0; `off` restores exactly that and removes the tag. The tag is written before the change, so
an interrupted `on` can still be undone, and a second `on` never overwrites the stored value with 0.

What happens to work meanwhile is the topology's business: flow-control's SQS queue holds the
orders (the event source mapping's invokes are throttled and messages stay on the queue), so none
is lost across an on/off cycle; no-flow-control's asynchronous invokes are retried and then
dropped (up to 2 retries and 6 hours), which is the article's point.
"""

from __future__ import annotations

import argparse
from typing import Any

from resilience.lab import Lab, LabError, fail, load_lab

TAG = "lab:kill-switch-previous"
UNRESERVED = "unreserved"


def _arn_and_tags(lam: Any, function: str) -> tuple[str, dict[str, str]]:
    try:
        arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    except lam.exceptions.ResourceNotFoundException:
        raise LabError(f"function {function} does not exist here: run `make bootstrap`") from None
    return arn, lam.list_tags(Resource=arn).get("Tags", {})


def reserved(lam: Any, function: str) -> int | None:
    return lam.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")


def switch_on(lam: Any, function: str) -> str:
    arn, tags = _arn_and_tags(lam, function)
    if TAG in tags:
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
        return f"{function}: kill switch already on (will restore {tags[TAG]})"
    previous = reserved(lam, function)
    stored = UNRESERVED if previous is None else str(previous)
    lam.tag_resource(Resource=arn, Tags={TAG: stored})
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
    return f"{function}: kill switch ON (reserved concurrency 0; was {stored})"


def switch_off(lam: Any, function: str) -> str:
    arn, tags = _arn_and_tags(lam, function)
    if TAG not in tags:
        return f"{function}: kill switch was not on (reserved concurrency {reserved(lam, function)})"
    stored = tags[TAG]
    if stored == UNRESERVED:
        lam.delete_function_concurrency(FunctionName=function)
    else:
        if not stored.isdigit():
            raise LabError(f"{function}: tag {TAG}={stored!r} is not a number; fix it by hand")
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=int(stored))
    lam.untag_resource(Resource=arn, TagKeys=[TAG])
    return f"{function}: kill switch OFF (reserved concurrency restored to {stored})"


def run(lab: Lab, state: str, function: str, topology: str) -> list[str]:
    lines = []
    for top in lab.select(topology):
        lam = lab.client("lambda", top)
        action = switch_on if state == "on" else switch_off
        lines.append(f"[{top.name}] " + action(lam, top.function(function)))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resilience.kill_switch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("state", choices=("on", "off"))
    parser.add_argument("function", nargs="?", default="delivery",
                        help="notification, delivery (default), courier or a function name")
    parser.add_argument("--topology", default="both")
    parser.add_argument("--endpoint-url")
    args = parser.parse_args(argv)
    try:
        for line in run(load_lab(args.endpoint_url), args.state, args.function, args.topology):
            print(line)
    except LabError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001
        fail(f"{type(exc).__name__}: {exc} (is the lab up? `make status`)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
