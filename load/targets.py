"""Where the load goes: the notify URLs of the chosen topologies, read from `.lab/endpoints.json`.

The bootstrap writes that file; tests write their own and pass it with `--endpoints`. Which
topologies exist, and what `both` means, is lab_kernel/topologies.toml's to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab_kernel import endpoints as contract
from lab_kernel import topologies as catalogue

TOPOLOGIES = catalogue.names()


class TargetError(ValueError):
    """The endpoints file or the topology choice is unusable; one line saying what to do."""


@dataclass(frozen=True)
class Target:
    topology: str
    notify_url: str


def selected_topologies(choice: str | None) -> tuple[str, ...]:
    """`make load TOPOLOGY=...` (a name, `both`, `all` or `a,b`); unset: `$TOPOLOGIES`, the pair
    by default, so `make load TOPOLOGIES=a,b` drives the topologies `make up TOPOLOGIES=a,b` made."""
    try:
        return catalogue.selected() if not choice else catalogue.catalogue().choose(choice)
    except catalogue.CatalogueError as error:
        raise TargetError(str(error)) from None


def label(names: tuple[str, ...]) -> str:
    """A run folder's name for the chosen topologies: `both` for the pair, as before."""
    return catalogue.BOTH if names == catalogue.catalogue().pair else "+".join(names)


def load_targets(choice: str | None, path: Path | None = None) -> list[Target]:
    """The notify URL of each chosen topology; `path` unset: `$LAB_ENDPOINTS_FILE` (another lab's
    file, as bootstrap writes it), else `.lab/endpoints.json`, read now, not at import."""
    topologies = selected_topologies(choice)
    path = path or contract.default_path()
    try:
        found = contract.load(path).topologies
    except contract.LabNotUp as error:
        raise TargetError(str(error)) from None
    targets = []
    for topology in topologies:
        entry = found.get(topology)
        url = entry.notify_url if entry is not None else None
        if not url or not url.startswith(("http://", "https://")):
            raise TargetError(
                f"{path}: topology {topology!r} has no http(s) 'notify_url': run `make bootstrap`"
            )
        targets.append(Target(topology, url))
    return targets
