"""`python -m resilience.kill_switch on|off [FUNCTION] [--topology ...]`: reserved concurrency 0.

The talk's kill switch ("set function concurrency to 0"): `on` stores the function's current
reserved concurrency in a tag (`lab:kill-switch-previous`, the value or `unreserved`) and then sets
it to 0; `off` restores exactly that and removes the tag. The tag is written before the change, so
an interrupted `on` can still be undone, and a second `on` never overwrites the stored value with 0.

While the switch is on, the function's enabled SQS event source mappings are paused too (their
ids in tag `lab:kill-switch-mappings`) and resumed by `off`. Reserved concurrency 0 alone would
keep the mapping receiving and being throttled: every receive counts towards the queue's
maxReceiveCount (5 x 150 s behind the queue), so a switch left on for ~12 minutes would move
orders to the DLQ. Paused, the orders simply wait on the queue: none is lost across an on/off
cycle, however long. The asynchronous wiring has no queue: its asynchronous invokes are throttled, retried
(2 retries) and then sent to the on-failure destination, which is the article's point.
"""

from __future__ import annotations

import argparse
from typing import Any

from resilience.lab import Lab, LabError, fail, load_lab

TAG = "lab:kill-switch-previous"
MAPPINGS_TAG = "lab:kill-switch-mappings"
UNRESERVED = "unreserved"


def _sqs_mappings(lam: Any, function: str, states: tuple[str, ...]) -> list[str]:
    pages = lam.get_paginator("list_event_source_mappings").paginate(FunctionName=function)
    return [
        m["UUID"]
        for page in pages
        for m in page.get("EventSourceMappings", [])
        if ":sqs:" in m.get("EventSourceArn", "") and m.get("State") in states
    ]


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
    mappings = _sqs_mappings(lam, function, ("Enabled", "Enabling", "Updating"))
    # recorded before anything changes, so an interrupted `on` can still be undone by `off`
    lam.tag_resource(Resource=arn, Tags={TAG: stored, MAPPINGS_TAG: " ".join(mappings)})
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
    for uuid in mappings:
        lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    paused = f"; {len(mappings)} SQS mapping(s) paused" if mappings else ""
    return f"{function}: kill switch ON (reserved concurrency 0; was {stored}{paused})"


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
    mappings = tags.get(MAPPINGS_TAG, "").split()
    for uuid in mappings:
        try:
            lam.update_event_source_mapping(UUID=uuid, Enabled=True)
        except lam.exceptions.ResourceNotFoundException:
            pass  # deleted meanwhile (e.g. a re-provisioning): nothing to resume
    lam.untag_resource(Resource=arn, TagKeys=[TAG, MAPPINGS_TAG])
    resumed = f"; {len(mappings)} SQS mapping(s) resumed" if mappings else ""
    return f"{function}: kill switch OFF (reserved concurrency restored to {stored}{resumed})"


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
