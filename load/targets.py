"""Where the load goes: the notify URLs of the chosen topologies, read from `.lab/endpoints.json`.

The bootstrap writes that file; tests write their own and pass it with `--endpoints`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from labctl.settings import STATE_DIR

# `$LAB_ENDPOINTS_FILE` selects another lab's file (a second, private lab), as bootstrap writes it
ENDPOINTS_FILE = Path(os.environ.get("LAB_ENDPOINTS_FILE") or STATE_DIR / "endpoints.json")
TOPOLOGIES = ("no-flow-control", "flow-control")
CHOICES = (*TOPOLOGIES, "both")


class TargetError(ValueError):
    """The endpoints file or the topology choice is unusable; one line saying what to do."""


@dataclass(frozen=True)
class Target:
    topology: str
    notify_url: str


def selected_topologies(choice: str) -> tuple[str, ...]:
    if choice == "both":
        return TOPOLOGIES
    if choice in TOPOLOGIES:
        return (choice,)
    raise TargetError(f"unknown topology {choice!r}: choose one of {', '.join(CHOICES)}")


def load_targets(choice: str, path: Path = ENDPOINTS_FILE) -> list[Target]:
    topologies = selected_topologies(choice)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TargetError(f"{path} does not exist: run `make up` (it provisions the lab)") from None
    except json.JSONDecodeError as error:
        raise TargetError(f"{path} is not valid JSON ({error}): run `make bootstrap`") from None
    found = data.get("topologies") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        raise TargetError(f"{path} has no 'topologies' object: run `make bootstrap`")
    targets = []
    for topology in topologies:
        entry = found.get(topology)
        url = entry.get("notify_url") if isinstance(entry, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TargetError(
                f"{path}: topology {topology!r} has no http(s) 'notify_url': run `make bootstrap`"
            )
        targets.append(Target(topology, url))
    return targets
