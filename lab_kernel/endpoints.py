"""`.lab/endpoints.json`, written by bootstrap: where each topology's parts live. The one parser.

The file's contract is `endpoints.schema.json` beside this module. `write` checks a file against
it in full before writing it; `load` and `read` refuse a file off its schema (a wrong type, a URL
that is not http(s)) with one line, and accept a partial one (tests, the seed's single branch),
filling the lab's names in. `LAB_ENDPOINTS_FILE` selects another lab's file (a second, private
lab) for every reader and for bootstrap alike.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from lab_kernel.settings import STATE_DIR

SCHEMA_FILE = Path(__file__).resolve().parent / "endpoints.schema.json"
FUNCTIONS = {"notification": "NotificationFunction", "delivery": "DeliveryFunction", "courier": "SlowApiFunction"}


def default_path() -> Path:
    """`$LAB_ENDPOINTS_FILE` if set (read when asked, so a test can set it), else `.lab/endpoints.json`."""
    return Path(os.environ.get("LAB_ENDPOINTS_FILE") or STATE_DIR / "endpoints.json")


# the default at import time, for help texts; readers call default_path()
ENDPOINTS_FILE = default_path()


class LabNotUp(RuntimeError):
    """The lab (or the part of it a command needs) is not there; the message says what to run."""


class OffSchema(LabNotUp):
    """The endpoints file breaks its schema; the message is one line naming where."""


@dataclass(frozen=True)
class TopologyEndpoints:
    name: str
    account: str
    region: str
    notify_url: str
    courier_url: str
    queues: dict[str, str]  # role (delivery, dlq, on_failure) -> queue URL
    functions: dict[str, str]  # role (notification, delivery, courier) -> function name
    log_groups: dict[str, str]  # role -> log group name
    deliveries_table: str | None  # None: an app without a courier table (the seed's own)
    localstack_url: str = ""  # the LocalStack hosting this topology (one per topology by default)
    event_bus: str | None = None
    api_key_secret: str | None = None
    endpoint_parameter: str | None = None

    @property
    def courier_api_id(self) -> str | None:
        """The REST API id inside a path-form URL: `/_aws/execute-api/{id}/{stage}/...`, or the
        older `/restapis/{id}/{stage}/_user_request_/...` of endpoints files written before."""
        parts = self.courier_url.split("/")
        for marker in ("execute-api", "restapis"):
            if marker in parts and parts.index(marker) + 1 < len(parts):
                return parts[parts.index(marker) + 1]
        return None

    def log_group(self, role: str) -> str:
        return self.log_groups.get(role) or f"/aws/lambda/{self.functions[role]}"

    def queue_name(self, role: str) -> str | None:
        url = self.queues.get(role)
        return url.rstrip("/").rsplit("/", 1)[-1] if url else None


@dataclass(frozen=True)
class Endpoints:
    localstack_url: str
    prometheus_url: str | None
    grafana_url: str | None
    topologies: dict[str, TopologyEndpoints]
    path: Path | None = None  # the file it was read from

    @property
    def localstack_urls(self) -> list[str]:
        """Every LocalStack of the lab, once each (one per topology by default)."""
        urls = [t.localstack_url or self.localstack_url for t in self.topologies.values()] or [self.localstack_url]
        return list(dict.fromkeys(u for u in urls if u))

    def topology(self, name: str) -> TopologyEndpoints:
        if name not in self.topologies:
            raise LabNotUp(f"topology {name!r} is not in {self.path or default_path()}: known {sorted(self.topologies)}")
        return self.topologies[name]


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def _without_required(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_required(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_without_required(v) for v in node]
    return node


@cache
def _reader_schema() -> dict[str, Any]:
    """The schema with every field optional: a partial file is read, a wrong one refused."""
    relaxed = _without_required(schema())  # a new tree: the cached schema stays as it is
    relaxed["required"] = ["topologies"]
    return relaxed


def check(data: Any, *, complete: bool = True, source: str = "endpoints file") -> None:
    """Raise OffSchema (one line) unless `data` fits the schema (`complete`: every field present)."""
    validator = jsonschema.Draft202012Validator(schema() if complete else _reader_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise OffSchema(f"{source} is off its schema at {where}: {error.message} (run `make bootstrap`)")


def _topology(name: str, raw: dict[str, Any], default_url: str = "") -> TopologyEndpoints:
    functions = {**FUNCTIONS, **(raw.get("functions") or {})}
    log_groups = {role: f"/aws/lambda/{fn}" for role, fn in functions.items()}
    log_groups.update(raw.get("log_groups") or {})
    return TopologyEndpoints(
        name=name,
        account=str(raw.get("account", "")),
        region=raw.get("region", "us-east-1"),
        notify_url=raw.get("notify_url", ""),
        courier_url=raw.get("courier_url", ""),
        queues={k: v for k, v in (raw.get("queues") or {}).items() if v},
        functions=functions,
        log_groups=log_groups,
        deliveries_table=raw.get("deliveries_table", "CourierDeliveries"),
        localstack_url=(raw.get("localstack_url") or default_url).rstrip("/"),
        event_bus=raw.get("event_bus"),
        api_key_secret=raw.get("api_key_secret"),
        endpoint_parameter=raw.get("endpoint_parameter"),
    )


def parse(data: Any, path: Path | None = None) -> Endpoints:
    """Typed records of JSON already read (and, from a file, checked by `read`)."""
    if not isinstance(data, dict) or not isinstance(data.get("topologies"), dict):
        raise LabNotUp(f"{path or 'endpoints file'} has no topologies: run `make up` again")
    default_url = (data.get("localstack_url") or "").rstrip("/")
    return Endpoints(
        localstack_url=default_url,
        prometheus_url=(data.get("prometheus_url") or None),
        grafana_url=(data.get("grafana_url") or None),
        topologies={n: _topology(n, t, default_url) for n, t in data["topologies"].items()},
        path=path,
    )


def read(path: Path | None = None) -> dict[str, Any]:
    """The file's JSON, checked against the schema (partial allowed), for tools that keep it raw."""
    path = path or default_path()
    if not path.exists():
        raise LabNotUp(f"no {path}: run `make up` first")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LabNotUp(f"{path} is not JSON ({exc}): run `make up` again") from None
    check(data, complete=False, source=str(path))
    return data


def load(path: Path | None = None) -> Endpoints:
    path = path or default_path()
    return parse(read(path), path)


def write(data: dict[str, Any], path: Path | None = None) -> Path:
    """Check `data` against the full schema, then write it atomically (a reader never sees half)."""
    path = path or default_path()
    check(data, complete=True, source=f"endpoints for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path
