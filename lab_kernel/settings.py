"""The lab's settings: `.env` at the repository root, overridden by the process environment.

Docker Compose reads the same `.env` for variable substitution, so both ways to run the lab are
driven by one file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lab_kernel import topologies

REPO_ROOT = Path(__file__).resolve().parent.parent
# Everything the lab writes at run time (state, logs, PIDs, endpoints). LAB_STATE_DIR lets a test
# run a whole second lab beside the one a person has up.
STATE_DIR = Path(os.environ.get("LAB_STATE_DIR") or REPO_ROOT / ".lab").resolve()


# topology -> (process name, port setting) of its own LocalStack (topologies.toml); the first one
# also hosts every topology when LAB_LOCALSTACK_PER_TOPOLOGY=0
LOCALSTACK_BY_TOPOLOGY = {t.name: (t.instance, t.port_setting) for t in topologies.catalogue().topologies}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says what to do."""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; blank lines and # comments are skipped."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        values[key.strip()] = value.strip().strip("'\"")
    return values


@dataclass(frozen=True)
class Settings:
    values: dict[str, str]

    @classmethod
    def load(cls, env_file: Path | None = None) -> Settings:
        values = read_env_file(env_file or REPO_ROOT / ".env")
        values.update({k: v for k, v in os.environ.items() if k in values or k.startswith("LAB_")})
        return cls(values)

    def get(self, key: str, default: str | None = None) -> str:
        value = self.values.get(key, default)
        if value is None:
            raise SettingsError(f"setting {key} is missing: add {key}=... to .env")
        return value

    def port(self, key: str) -> int:
        raw = self.get(key)
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise SettingsError(f"setting {key}={raw!r} is not a TCP port: use a number 1-65535")
        return int(raw)

    def integer(self, key: str, minimum: int = 0) -> int:
        raw = self.get(key)
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"setting {key}={raw!r} is not a whole number") from None
        if value < minimum:
            raise SettingsError(f"setting {key}={value} must be at least {minimum}")
        return value

    @property
    def localstack_url(self) -> str:
        """The first topology's LocalStack: health, status and single-instance tools."""
        return f"http://127.0.0.1:{self.port('LAB_LOCALSTACK_PORT')}"

    @property
    def localstack_per_topology(self) -> bool:
        """One LocalStack process per topology (default), else both in one.

        LocalStack serves every request of a process under one GIL: a retry storm in one
        topology then slows the other's API too. Two processes keep them apart, and use two cores.
        """
        return self.get("LAB_LOCALSTACK_PER_TOPOLOGY", "1").strip().lower() not in ("0", "false", "no", "off")

    @property
    def topologies(self) -> tuple[str, ...]:
        """The topologies chosen by `$TOPOLOGIES` (default: the comparison pair)."""
        return topologies.selected()

    def _localstack_of(self) -> dict[str, tuple[str, str]]:
        """Chosen topology -> (process name, port setting) of the LocalStack that hosts it: only
        the chosen topologies' processes are started, so a catalogue entry costs nothing unchosen."""
        chosen = self.topologies
        if self.localstack_per_topology:
            return {name: LOCALSTACK_BY_TOPOLOGY[name] for name in chosen}
        first = next(iter(LOCALSTACK_BY_TOPOLOGY.values()))
        return dict.fromkeys(chosen, first)

    def localstack_instances(self) -> dict[str, str]:
        """Process name -> the port setting of each LocalStack the lab runs."""
        return dict(self._localstack_of().values())

    def localstack_urls(self) -> dict[str, str]:
        """Topology -> the URL of the LocalStack that hosts it."""
        return {topology: f"http://127.0.0.1:{self.port(key)}" for topology, (_, key) in self._localstack_of().items()}

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.port('LAB_PROMETHEUS_PORT')}"

    @property
    def grafana_url(self) -> str:
        return f"http://127.0.0.1:{self.port('LAB_GRAFANA_PORT')}"
