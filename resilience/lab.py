"""The running lab as the CLIs see it: LocalStack URL, topologies (accounts) and function names.

Read from `.lab/endpoints.json` (written by the bootstrap); a missing file falls back to the
settings (`LAB_LOCALSTACK_PORT`) and the lab's fixed names, so the CLIs also work against a test
LocalStack given `--endpoint-url`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from lab_kernel import endpoints as contract
from lab_kernel.settings import Settings
from lab_kernel.topologies import BOTH, catalogue

ENDPOINTS_FILE = contract.default_path()
REGION = "us-east-1"
ACCOUNTS = {t.name: t.account for t in catalogue().topologies}
FUNCTIONS = {
    "notification": "NotificationFunction",
    "delivery": "DeliveryFunction",
    "courier": "SlowApiFunction",
}
# accepted spellings of a function on the command line -> role
ALIASES = {
    "notification": "notification", "notificationfunction": "notification", "notify": "notification",
    "delivery": "delivery", "deliveryfunction": "delivery",
    "courier": "courier", "slow_api": "courier", "slowapi": "courier", "slowapifunction": "courier",
}


class LabError(RuntimeError):
    """Unusable input or lab state; the message is one line saying what to do."""


@dataclass(frozen=True)
class Topology:
    name: str
    account: str
    region: str = REGION
    functions: dict[str, str] = field(default_factory=lambda: dict(FUNCTIONS))
    notify_url: str | None = None
    queues: dict[str, str] = field(default_factory=dict)
    localstack_url: str | None = None  # its own LocalStack; None: the lab's

    def function(self, name: str) -> str:
        """Role (`delivery`), alias (`slow_api`) or a function name as is (the CLIs also serve
        test functions); whether it exists is checked by the command that uses it."""
        role = ALIASES.get(name.lower().replace("-", "_"))
        if role is not None:
            return self.functions[role]
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise LabError(
                f"bad function {name!r}: use one of {', '.join(sorted(self.functions))} "
                f"or a function name ({', '.join(self.functions.values())})"
            )
        return name


@dataclass(frozen=True)
class Lab:
    localstack_url: str
    prometheus_url: str | None
    topologies: dict[str, Topology]

    def select(self, choice: str) -> list[Topology]:
        if choice == BOTH:
            return [self.topologies[n] for n in catalogue().pair if n in self.topologies]
        if choice not in self.topologies:
            raise LabError(f"unknown topology {choice!r}: choose {', '.join(self.topologies)} or both")
        return [self.topologies[choice]]

    def client(self, service: str, topology: Topology, **config: Any) -> Any:
        """A boto3 client in the topology's account (LocalStack maps the access key to it)."""
        return boto3.client(
            service,
            endpoint_url=topology.localstack_url or self.localstack_url,
            region_name=topology.region,
            aws_access_key_id=topology.account,
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 2}, **config),
        )


def load_lab(endpoint_url: str | None = None, path: Path | None = None) -> Lab:
    """`path` or `$LAB_ENDPOINTS_FILE` (a second, private lab) or `.lab/endpoints.json`."""
    path = path or contract.default_path()
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = contract.read(path)
        except contract.LabNotUp as exc:
            raise LabError(str(exc)) from None
    settings = Settings.load()
    url = endpoint_url or data.get("localstack_url")
    if not url:
        url = f"http://127.0.0.1:{settings.get('LAB_LOCALSTACK_PORT', '4566')}"
    prometheus = data.get("prometheus_url") or (
        f"http://127.0.0.1:{settings.get('LAB_PROMETHEUS_PORT', '9090')}"
    )
    raw_topologies = data.get("topologies") or {}
    topologies = {}
    for name, account in ACCOUNTS.items():
        raw = raw_topologies.get(name) or {}
        topologies[name] = Topology(
            name=name,
            account=str(raw.get("account") or account),
            region=raw.get("region") or REGION,
            functions={**FUNCTIONS, **(raw.get("functions") or {})},
            notify_url=raw.get("notify_url"),
            queues={k: v for k, v in (raw.get("queues") or {}).items() if v},
            # an explicit endpoint URL is one LocalStack for both topologies
            localstack_url=None if endpoint_url else ((raw.get("localstack_url") or "").rstrip("/") or None),
        )
    return Lab(url.rstrip("/"), prometheus.rstrip("/") if prometheus else None, topologies)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
