"""`python -m resilience.breaker on|off|status|reset`: the delivery function's circuit breaker.

`on` creates what the breaker needs in each topology's account (DynamoDB table
`lab-circuit-breaker`, retry queue `lab-delivery-retry` with an event source mapping back to the
function, at most 10 batches at once, so parked orders are delivered again) and sets the function's environment:
`CIRCUIT_BREAKER=on`, `CB_TABLE`, `CB_RETRY_QUEUE_URL` and the thresholds (seed: failure 3,
success 2, timeout 10 s). `off` sets `CIRCUIT_BREAKER=off` and keeps the table and queue, so
orders already parked still drain. `reset` forces the shared circuit CLOSED.
"""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from typing import Any

from bootstrap import topology
from bootstrap.aws import Clients
from bootstrap.progress import Progress
from bootstrap.provision import ProvisioningError, breaker_resources, map_breaker_retry_queue
from bootstrap.resources import ensure_table
from lab_breaker import BreakerSettings
from resilience.lab import Lab, LabError, Topology, fail, load_lab

TABLE = topology.BREAKER_TABLE
RETRY_QUEUE = topology.BREAKER_RETRY_QUEUE


def _provisioning(lab: Lab, topology: Topology) -> tuple[Clients, Progress]:
    """Bootstrap's own clients and helpers, so `on` creates exactly what the catalogue's breaker
    topology gets (the same table, queue and mapping settings); their progress lines are not shown."""
    url = topology.localstack_url or lab.localstack_url
    return Clients(url, topology.account, topology.region), Progress(out=io.StringIO())


def ensure_breaker(lab: Lab, topology: Topology, function: str, redrive: bool) -> dict[str, str]:
    """The breaker's table and retry queue, and the mapping back to `function` unless `redrive`
    is off; the variables that switch the function's breaker on."""
    c, p = _provisioning(lab, topology)
    try:
        environment = breaker_resources(c, p, topology.name)
    except ProvisioningError as exc:
        raise LabError(str(exc)) from None
    if redrive:
        map_breaker_retry_queue(c, p, topology.name, function)
    return environment


def update_environment(lam: Any, function: str, changes: dict[str, str]) -> dict[str, str]:
    try:
        config = lam.get_function_configuration(FunctionName=function)
    except lam.exceptions.ResourceNotFoundException:
        raise LabError(f"function {function} does not exist here: run `make bootstrap`") from None
    variables = {**(config.get("Environment") or {}).get("Variables", {}), **changes}
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=function, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120}
    )
    return variables


def switch_on(lab: Lab, topology: Topology, function: str, args: argparse.Namespace) -> str:
    environment = ensure_breaker(lab, topology, function, redrive=not args.no_redrive)
    update_environment(lab.client("lambda", topology), function, {
        **environment,
        "CB_FAILURE_THRESHOLD": str(args.failure_threshold),
        "CB_SUCCESS_THRESHOLD": str(args.success_threshold),
        "CB_TIMEOUT_SECONDS": str(args.timeout),
    })
    return (f"{function}: circuit breaker ON (failure {args.failure_threshold}, success "
            f"{args.success_threshold}, timeout {args.timeout:g} s; retry queue {RETRY_QUEUE})")


def switch_off(lab: Lab, topology: Topology, function: str, args: argparse.Namespace) -> str:
    update_environment(lab.client("lambda", topology), function, {"CIRCUIT_BREAKER": "off"})
    return f"{function}: circuit breaker OFF (table and retry queue kept so parked orders drain)"


def circuit_item(lab: Lab, topology: Topology, name: str = "courier") -> dict[str, Any] | None:
    ddb = lab.client("dynamodb", topology)
    try:
        item = ddb.get_item(TableName=TABLE, Key={"name": {"S": name}}, ConsistentRead=True)
    except ddb.exceptions.ResourceNotFoundException:
        return None
    raw = item.get("Item")
    if not raw:
        return None
    return {k: next(iter(v.values())) for k, v in raw.items()}


def show_status(lab: Lab, topology: Topology, function: str, args: argparse.Namespace) -> str:
    lam, sqs = lab.client("lambda", topology), lab.client("sqs", topology)
    env = (lam.get_function_configuration(FunctionName=function).get("Environment") or {}).get(
        "Variables", {}
    )
    lines = [f"{function}: CIRCUIT_BREAKER={env.get('CIRCUIT_BREAKER', 'off')}"]
    item = circuit_item(lab, topology)
    if item:
        opened = item.get("opened_at")
        opened_text = datetime.fromtimestamp(float(opened), UTC).isoformat() if opened else "-"
        lines.append(
            f"    circuit {item.get('state', '?').upper()} fail_count={item.get('fail_count')} "
            f"success_count={item.get('success_count')} opened_at={opened_text}"
            + (f" probe={item['probe_owner']}" if item.get("probe_owner") else "")
        )
    else:
        lines.append("    circuit: no state yet (closed)")
    try:
        url = sqs.get_queue_url(QueueName=RETRY_QUEUE)["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        parked = sum(int(attrs.get(k, 0)) for k in (
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"))
        lines.append(f"    retry queue {RETRY_QUEUE}: {parked} parked order(s)")
    except sqs.exceptions.QueueDoesNotExist:
        lines.append(f"    retry queue {RETRY_QUEUE}: not created")
    return "\n".join(lines)


def reset(lab: Lab, topology: Topology, function: str, args: argparse.Namespace) -> str:
    from lab_breaker import DynamoDBCircuitStorage

    c, p = _provisioning(lab, topology)
    ensure_table(c, p, topology.name, TABLE, "name")
    DynamoDBCircuitStorage(TABLE, "courier", lab.client("dynamodb", topology)).force("closed")
    return "circuit forced CLOSED (counters and probe lease cleared)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resilience.breaker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("on", "off", "status", "reset"))
    parser.add_argument("--topology", default="both")
    parser.add_argument("--function", default="delivery")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--failure-threshold", type=int, default=BreakerSettings.failure_threshold)
    parser.add_argument("--success-threshold", type=int, default=BreakerSettings.success_threshold)
    parser.add_argument("--timeout", type=float, default=BreakerSettings.reset_timeout_s,
                        help="seconds the circuit stays OPEN before a half-open probe")
    parser.add_argument("--no-redrive", action="store_true",
                        help="do not map the retry queue back to the function")
    parser.add_argument("--json", action="store_true", help="status: print the raw circuit items")
    args = parser.parse_args(argv)
    if min(args.failure_threshold, args.success_threshold) < 1 or args.timeout <= 0:
        fail("thresholds must be >= 1 and --timeout > 0")
    action = {"on": switch_on, "off": switch_off, "status": show_status, "reset": reset}[
        args.command
    ]
    try:
        lab = load_lab(args.endpoint_url)
        for topology in lab.select(args.topology):
            if args.json and args.command == "status":
                print(json.dumps({topology.name: circuit_item(lab, topology)}))
                continue
            print(f"[{topology.name}] " + action(lab, topology, topology.function(args.function), args))
    except LabError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001
        fail(f"{type(exc).__name__}: {exc} (is the lab up? `make status`)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
