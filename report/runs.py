"""Which run a report is about: a load run folder, an explicit time range, or the newest run.

`python -m load run` writes `reports/<stamp>-<profile>-<topology>/phases.json` at the end with the
run id, profile and start/end times; during a run only the folder exists and its name's stamp
gives the start. The report is written into the same folder.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lab_kernel.settings import REPO_ROOT
from lab_kernel.topologies import catalogue

REPORTS_DIR = REPO_ROOT / "reports"
_STAMP = re.compile(r"^(\d{8}T\d{6}Z)(?:-([a-z0-9-]+?))?(?:-("
                    + "|".join(re.escape(n) for n in catalogue().choices) + "))?$")
_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smh])$")


class RunError(ValueError):
    pass


@dataclass(frozen=True)
class RunWindow:
    folder: Path
    start: float  # unix seconds
    end: float
    profile: str | None
    run_id: str | None  # order ids of the run start with it
    finished: bool  # False while the load is still running (no phases.json yet)

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1.0)


def parse_time(text: str, now: float | None = None) -> float:
    """ISO 8601 (naive = UTC), unix seconds, `now`, or relative like -20m / -90s / -1h."""
    now = time.time() if now is None else now
    text = text.strip()
    if text == "now":
        return now
    m = _RELATIVE.match(text)
    if m:
        return now - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RunError(f"not a time: {text!r} (use ISO 8601, unix seconds, now, or -20m)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _epoch(value: object) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_time(value)
        except RunError:
            return None
    return None


def from_folder(folder: Path, now: float | None = None) -> RunWindow:
    now = time.time() if now is None else now
    if not folder.is_dir():
        raise RunError(f"no run folder {folder}")
    m = _STAMP.match(folder.name)
    phases = folder / "phases.json"
    if phases.exists():
        try:
            data = json.loads(phases.read_text())
        except json.JSONDecodeError as error:
            raise RunError(f"{phases} is not JSON ({error})") from None
        start, end = _epoch(data.get("started_at")), _epoch(data.get("ended_at"))
        if start is None or end is None:
            raise RunError(f"{phases} has no started_at/ended_at")
        return RunWindow(folder, start, end, data.get("profile"), data.get("run_id"), True)
    if m:
        start = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        return RunWindow(folder, start, now, m.group(2), None, False)
    raise RunError(f"{folder} has no phases.json and its name has no <YYYYmmddTHHMMSSZ> stamp: pass --start")


def newest(reports: Path = REPORTS_DIR) -> Path:
    candidates = sorted(p for p in reports.glob("*") if p.is_dir() and _STAMP.match(p.name))
    if not candidates:
        raise RunError(f"no run under {reports}: run `make load` (or `make experiment`) first, or pass --start")
    return candidates[-1]


def resolve(
    run: Path | None = None,
    start: str | None = None,
    end: str | None = None,
    profile: str | None = None,
    reports: Path = REPORTS_DIR,
    now: float | None = None,
) -> RunWindow:
    now = time.time() if now is None else now
    if start is not None:
        t0 = parse_time(start, now)
        t1 = parse_time(end, now) if end else now
        if t1 <= t0:
            raise RunError(f"--end must be after --start ({end} <= {start})")
        folder = run or reports / (datetime.fromtimestamp(t0, UTC).strftime("%Y%m%dT%H%M%SZ") + "-range")
        return RunWindow(folder, t0, t1, profile, None, True)
    window = from_folder(run if run is not None else newest(reports), now)
    if end is not None:
        window = RunWindow(window.folder, window.start, parse_time(end, now), window.profile, window.run_id, window.finished)
    if profile is not None:
        window = RunWindow(window.folder, window.start, window.end, profile, window.run_id, window.finished)
    return window


def turns(folder: Path) -> dict[str, RunWindow] | None:
    """The topologies' own windows of a run in turns (`make experiment` wrote a phases.json with
    `turns`: topology -> its own run folder beside this one); None for any other run."""
    phases = folder / "phases.json"
    try:
        named = json.loads(phases.read_text()).get("turns") if phases.exists() else None
    except (json.JSONDecodeError, AttributeError):
        return None
    if not isinstance(named, dict) or not named:
        return None
    return {topology: from_folder(folder.parent / name) for topology, name in named.items()}


def run_order(folder: Path) -> list[str]:
    """Why a run in turns ran so, as `make experiment` recorded it beside the turns."""
    try:
        lines = json.loads((folder / "phases.json").read_text()).get("run_order")
    except (OSError, json.JSONDecodeError, AttributeError):
        return []
    return [str(line) for line in lines] if isinstance(lines, list) else []
