"""`.lab/endpoints.json`, written by bootstrap: where each topology lives.

Read through small typed records so every other module fails early with a one-line message
instead of a KeyError deep inside a report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.settings import STATE_DIR

# `$LAB_ENDPOINTS_FILE` selects another lab's file (a second, private lab), as bootstrap writes it
ENDPOINTS_FILE = Path(os.environ.get("LAB_ENDPOINTS_FILE") or STATE_DIR / "endpoints.json")
TOPOLOGIES = ("no-flow-control", "flow-control")


class LabNotUp(RuntimeError):
    """The lab (or the part of it a command needs) is not there; the message says what to run."""


@dataclass(frozen=True)
class Topology:
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
    topologies: dict[str, Topology]

    @property
    def localstack_urls(self) -> list[str]:
        """Every LocalStack of the lab, once each (one per topology by default)."""
        urls = [t.localstack_url or self.localstack_url for t in self.topologies.values()] or [self.localstack_url]
        return list(dict.fromkeys(urls))

    def topology(self, name: str) -> Topology:
        if name not in self.topologies:
            raise LabNotUp(f"topology {name!r} is not in {ENDPOINTS_FILE}: known {sorted(self.topologies)}")
        return self.topologies[name]


def _topology(name: str, raw: dict[str, Any], default_url: str = "") -> Topology:
    functions = {
        "notification": "NotificationFunction",
        "delivery": "DeliveryFunction",
        "courier": "SlowApiFunction",
        **(raw.get("functions") or {}),
    }
    log_groups = {role: f"/aws/lambda/{fn}" for role, fn in functions.items()}
    log_groups.update(raw.get("log_groups") or {})
    return Topology(
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
    )


def parse(data: dict[str, Any]) -> Endpoints:
    if not isinstance(data, dict) or "topologies" not in data or "localstack_url" not in data:
        raise LabNotUp("endpoints file has no localstack_url/topologies: run `make up` again")
    default_url = data["localstack_url"].rstrip("/")
    return Endpoints(
        localstack_url=default_url,
        prometheus_url=(data.get("prometheus_url") or None),
        grafana_url=(data.get("grafana_url") or None),
        topologies={n: _topology(n, t, default_url) for n, t in data["topologies"].items()},
    )


def load(path: Path | None = None) -> Endpoints:
    path = path or ENDPOINTS_FILE
    if not path.exists():
        raise LabNotUp(f"no {path}: run `make up` first")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LabNotUp(f"{path} is not JSON ({exc}): run `make up` again") from None
    return parse(data)
