"""`python -m resilience.chaos on|off|status`: turn lab_faults on and off per function and topology.

    on  --function delivery --mode latency --min-ms 100 --max-ms 200 [--rate 0.5] [--for 5m]
    on  --function notification --config '{"faults": {"status_code": {"rate": 0.2}}}'
    off [--function delivery] [--mode latency]      # no --function: every lab function
    status

`on` adds or replaces one mode and keeps the others (several modes at once run in the fixed order
of lab_faults.MODE_ORDER). Every document is checked with the functions' own validator before it
is stored; functions see the change within their cache TTL (30 s), no redeploy.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from lab_faults import MODE_ORDER, FaultConfigError
from lab_faults.injector import DEFAULT_CACHE_SECONDS
from lab_faults.config import CORRUPTION_STYLES, CRASH_HOW, CRASH_WHEN, now_utc
from lab_kernel.topologies import catalogue
from resilience import faults_store
from resilience.lab import Lab, LabError, fail, load_lab

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise LabError(f"duration {text!r} not understood: use e.g. 90s, 5m, 1h")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return timedelta(seconds=value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit])


def parse_match(text: str) -> dict[str, Any]:
    """`path=value` (equals; value parsed as JSON when it is JSON) or `path~regex`."""
    for sep, key in (("~", "regex"), ("=", "equals")):
        if sep in text:
            path, value = text.split(sep, 1)
            if key == "equals":
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            return {"path": path.strip(), key: value}
    raise LabError(f"match {text!r}: use PATH=VALUE or PATH~REGEX")


def mode_from_args(args: argparse.Namespace) -> dict[str, Any]:
    entry: dict[str, Any] = {"rate": args.rate}
    options = {
        "latency": {"min_ms": args.min_ms, "max_ms": args.max_ms},
        "exception": {"message": args.message},
        "status_code": {"status_code": args.status_code},
        "disk_space": {"mb": args.mb},
        "denylist": {"hosts": args.hosts},
        "corruption": {"style": args.style},
        "timeout": {},
        "crash": {"how": args.how, "when": args.when},
    }[args.mode]
    entry.update({k: v for k, v in options.items() if v is not None})
    if args.match:
        entry["match"] = [parse_match(m) for m in args.match]
    if args.duration:
        entry["expires_at"] = (now_utc() + parse_duration(args.duration)).isoformat()
    return entry


def load_config_arg(text: str) -> dict[str, Any]:
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise LabError(f"--config is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise LabError("--config must be a JSON object")
    return document


def require_function(lab: Lab, topology: Any, function: str) -> None:
    lam = lab.client("lambda", topology)
    try:
        lam.get_function_configuration(FunctionName=function)
    except lam.exceptions.ResourceNotFoundException:
        raise LabError(
            f"function {function} does not exist in {topology.name} ({topology.account}): "
            "check the name or run `make bootstrap`"
        ) from None


# What a user waits for after `on`/`off`: each warm environment rereads its document when its
# cache expires (lab_faults' default TTL; a new environment reads it at once).
PICKUP_NOTE = f"warm environments pick this up within {DEFAULT_CACHE_SECONDS:g} s (their fault-config cache)"


def turn_on(lab: Lab, args: argparse.Namespace) -> None:
    from lab_faults import parse_config

    # validate what was asked before touching the lab: a bad rate fails fast and changes nothing
    entry = mode_from_args(args) if not args.config else None
    parse_config({"faults": {args.mode: entry}} if entry is not None else load_config_arg(args.config))
    for topology in lab.select(args.topology):
        function = topology.function(args.function)
        require_function(lab, topology, function)
        ssm = lab.client("ssm", topology)
        if args.config:
            document = load_config_arg(args.config)
        else:
            document = faults_store.read(ssm, function) or {}
            if "_unparseable" in document:
                document = {}
            document.setdefault("faults", {})[args.mode] = entry
            document["enabled"] = True
        faults_store.write(ssm, function, document)
        print(f"[{topology.name}] {function}: faults on")
        for line in faults_store.describe(json.dumps(document)):
            print(f"    {line}")
    print(PICKUP_NOTE)


def turn_off(lab: Lab, args: argparse.Namespace) -> None:
    for topology in lab.select(args.topology):
        ssm = lab.client("ssm", topology)
        functions = (
            [topology.function(args.function)] if args.function else list(faults_store.list_all(ssm))
        )
        for function in functions:
            document = faults_store.read(ssm, function)
            if args.mode and document and isinstance(document.get("faults"), dict):
                document["faults"].pop(args.mode, None)
                if document["faults"]:
                    faults_store.write(ssm, function, document)
                    print(f"[{topology.name}] {function}: {args.mode} off")
                    continue
            removed = faults_store.delete(ssm, function)
            print(f"[{topology.name}] {function}: {'faults off' if removed else 'no faults were set'}")
        if not functions:
            print(f"[{topology.name}] no faults were set")
    print(PICKUP_NOTE)


def status(lab: Lab, args: argparse.Namespace) -> None:
    for topology in lab.select(args.topology):
        documents = faults_store.list_all(lab.client("ssm", topology))
        print(f"[{topology.name}] account {topology.account}")
        if not documents:
            print("    no faults configured")
        for function, raw in sorted(documents.items()):
            print(f"  {function} ({faults_store.parameter_name(function)})")
            for line in faults_store.describe(raw):
                print(f"    {line}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m resilience.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    on = sub.add_parser("on", help="add or replace a fault mode on a function")
    off = sub.add_parser("off", help="remove faults (one mode, one function, or all)")
    st = sub.add_parser("status", help="show the fault documents and what is active")
    for p in (on, off, st):
        p.add_argument("--topology", default="both", help=", ".join(catalogue().choices))
        p.add_argument("--endpoint-url", help="LocalStack URL (default: .lab/endpoints.json)")
    on.add_argument("--function", required=True, help="notification, delivery, courier or a name")
    on.add_argument("--mode", choices=MODE_ORDER)
    on.add_argument("--config", help="a whole fault document (JSON, or @file.json)")
    on.add_argument("--rate", type=float, default=1.0, help="probability per invocation, 0..1")
    on.add_argument("--for", dest="duration", help="revert by itself after this long (90s, 5m)")
    on.add_argument("--match", action="append", help="PATH=VALUE or PATH~REGEX on event fields")
    on.add_argument("--min-ms", type=float)
    on.add_argument("--max-ms", type=float)
    on.add_argument("--message")
    on.add_argument("--status-code", type=int)
    on.add_argument("--mb", type=int)
    on.add_argument("--hosts", nargs="+", help="regex patterns of hosts (or host:port) to block")
    on.add_argument("--style", choices=CORRUPTION_STYLES)
    on.add_argument("--how", choices=CRASH_HOW, help="crash: SIGKILL (as out of memory) or exit 1")
    on.add_argument("--when", choices=CRASH_WHEN, help="crash: before the handler or after it returned")
    off.add_argument("--function")
    off.add_argument("--mode", choices=MODE_ORDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "on" and not args.mode and not args.config:
        fail("on needs --mode (with its options) or --config")
    try:
        lab = load_lab(args.endpoint_url)
        {"on": turn_on, "off": turn_off, "status": status}[args.command](lab, args)
    except (LabError, FaultConfigError) as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback, for unreachable lab etc.
        fail(f"{type(exc).__name__}: {exc} (is the lab up? `make status`)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
