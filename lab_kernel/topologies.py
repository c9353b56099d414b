"""The lab's topologies, read from `topologies.toml` beside this file: the one place they are named.

Every tool asks this module which topologies exist, in which account and LocalStack each lives,
how its bus reaches the courier (the wiring kind) and which pair the verdict compares, so adding
a topology is one entry in the file. `LAB_TOPOLOGIES_FILE` points at another catalogue (tests).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import jsonschema

HERE = Path(__file__).resolve().parent
CATALOGUE_FILE = HERE / "topologies.toml"
SCHEMA_FILE = HERE / "topologies.schema.json"
BOTH = "both"  # the reserved word for the default pair, on every command line
ALL = "all"  # the reserved word for every topology of the catalogue (TOPOLOGIES=all)
# The environment variable (and Makefile variable) choosing which topologies `make up`, `make
# load`, `make experiment` and `make report` work on: `a,b`, `all` or `both`; unset: the pair.
SELECTION_VARIABLE = "TOPOLOGIES"

Wiring = Literal["async-invoke", "sqs-esm", "eventbridge-api-destination"]
ASYNC_INVOKE: Wiring = "async-invoke"  # bus rule -> function, asynchronous invoke with retries
SQS_ESM: Wiring = "sqs-esm"  # bus rule -> queue -> event source mapping with maximum concurrency
API_DESTINATION: Wiring = "eventbridge-api-destination"  # bus rule -> API destination (rate limit) -> courier; no function


# What an expectation may compare (`[topology.expect]`): a topology's measured or simulated figures
# (report.verdict.Outcome's fields of the same names). The schema lists the same words.
MEASURES = ("peak_account_concurrency", "peak_delivery_concurrency", "throttles", "courier_429s",
            "courier_calls", "dead_lettered", "duplicated")


class CatalogueError(ValueError):
    """topologies.toml is off its schema or inconsistent; the message is one line."""


@dataclass(frozen=True)
class FunctionSettings:
    reserved_concurrency: int  # 0: none, the account's unreserved pool
    breaker: bool  # the circuit breaker on at provisioning time


@dataclass(frozen=True)
class Expectations:
    """What the verdict judges on a topology beyond the article's pair (report.verdict), each
    predicted by the simulation before a load: the entry says what its fix is for."""

    delivery_within_reservation: bool = False  # peak delivery concurrency <= delivery.reserved_concurrency
    at_least_the_storm: tuple[str, ...] = ()  # MEASURES at least the comparison storm's
    at_most_the_storm: tuple[str, ...] = ()  # MEASURES at most the comparison storm's

    def __bool__(self) -> bool:
        return bool(self.delivery_within_reservation or self.at_least_the_storm or self.at_most_the_storm)


@dataclass(frozen=True)
class Topology:
    name: str
    account: str
    wiring: Wiring
    short: str = ""
    title: str = ""
    colour: str = "#1f77b4"
    instance: str = "localstack"
    port_setting: str = "LAB_LOCALSTACK_PORT"
    account_limit_setting: str = "LAB_ACCOUNT_CONCURRENCY"
    delivery: FunctionSettings = FunctionSettings(0, False)
    # the account's concurrency limit is the setting's value times this: `more-concurrency` asks
    # what a raised limit does to the storm (the article: it grows)
    account_limit_factor: float = 1.0
    expect: Expectations = Expectations()

    def account_limit(self, base: int) -> int:
        """This topology's account limit when `account_limit_setting` is `base`."""
        return max(1, round(base * self.account_limit_factor))

    @property
    def queued(self) -> bool:
        """Orders wait in a queue before the delivery function (a queue, a DLQ, an ESM)."""
        return self.wiring == SQS_ESM

    @property
    def has_delivery_function(self) -> bool:
        """A DeliveryFunction carries orders to the courier (an API destination calls it itself)."""
        return self.wiring != API_DESTINATION


@dataclass(frozen=True)
class Catalogue:
    topologies: tuple[Topology, ...]
    storm: str
    remedy: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topologies)

    @property
    def pair(self) -> tuple[str, str]:
        """What `both` means: the storm and the remedy, in that order."""
        return (self.storm, self.remedy)

    def get(self, name: str) -> Topology:
        for topology in self.topologies:
            if topology.name == name:
                return topology
        raise CatalogueError(f"unknown topology {name!r}: known {', '.join(self.names)} ({CATALOGUE_FILE})")

    def by_account(self) -> dict[str, str]:
        return {t.account: t.name for t in self.topologies}

    def select(self, choice: str) -> tuple[str, ...]:
        """A command line's topology choice: one name, or `both` (the default pair)."""
        if choice == BOTH:
            return self.pair
        if choice in self.names:
            return (choice,)
        raise CatalogueError(f"unknown topology {choice!r}: choose one of {', '.join((*self.names, BOTH))}")

    def with_pair(self, chosen: tuple[str, ...]) -> tuple[str, ...]:
        """`chosen` and the comparison pair, in the catalogue's order: every topology's verdict
        compares it with the storm and the remedy, so an experiment runs them too."""
        wanted = {*chosen, *self.pair}
        return tuple(n for n in self.names if n in wanted)

    @property
    def choices(self) -> tuple[str, ...]:
        return (*self.names, BOTH)

    def choose(self, spec: str | None) -> tuple[str, ...]:
        """A `TOPOLOGIES` value: comma-separated names, `all`, or `both`; empty: the pair.

        The chosen names come back in the catalogue's order (the pair's storm first)."""
        words = [w.strip() for w in (spec or "").split(",") if w.strip()]
        if not words or words == [BOTH]:
            return self.pair
        if words == [ALL]:
            return self.names
        chosen: set[str] = set()
        for word in words:
            if word == BOTH:
                chosen.update(self.pair)
            elif word in self.names:
                chosen.add(word)
            else:
                raise CatalogueError(f"unknown topology {word!r} in {SELECTION_VARIABLE}: "
                                     f"choose from {', '.join(self.names)} (comma-separated), {ALL} or {BOTH}")
        return tuple(n for n in self.names if n in chosen)


def _expectations(e: dict) -> Expectations:
    return Expectations(
        delivery_within_reservation=bool(e.get("delivery_within_reservation", False)),
        at_least_the_storm=tuple(e.get("at_least_the_storm", ())),
        at_most_the_storm=tuple(e.get("at_most_the_storm", ())),
    )


def parse(data: dict) -> Catalogue:
    schema = json.loads(SCHEMA_FILE.read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise CatalogueError(f"topologies catalogue, {where}: {error.message}")
    topologies = tuple(
        Topology(
            name=t["name"], account=t["account"], wiring=t["wiring"], short=t["short"], title=t["title"],
            colour=t["colour"], instance=t["instance"], port_setting=t["port_setting"],
            account_limit_setting=t["account_limit_setting"],
            delivery=FunctionSettings(t["delivery"]["reserved_concurrency"], t["delivery"]["breaker"]),
            account_limit_factor=float(t.get("account_limit_factor", 1.0)),
            expect=_expectations(t.get("expect", {})),
        )
        for t in data["topology"]
    )
    names = [t.name for t in topologies]
    for label, values in (("name", names), ("account", [t.account for t in topologies]),
                          ("short", [t.short for t in topologies])):
        if len(set(values)) != len(values):
            raise CatalogueError(f"topologies catalogue: two topologies have the same {label}")
    comparison = data["comparison"]
    for role in ("storm", "remedy"):
        if comparison[role] not in names:
            raise CatalogueError(f"topologies catalogue: comparison.{role} {comparison[role]!r} is not a topology")
    for t in topologies:
        if t.expect.delivery_within_reservation and not t.delivery.reserved_concurrency:
            raise CatalogueError(f"topologies catalogue: {t.name} expects delivery within its reservation "
                                 "but reserves none (delivery.reserved_concurrency)")
    return Catalogue(topologies, comparison["storm"], comparison["remedy"])


@cache
def load(path: Path | None = None) -> Catalogue:
    path = path or Path(os.environ.get("LAB_TOPOLOGIES_FILE") or CATALOGUE_FILE)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    return parse(data)


def catalogue() -> Catalogue:
    """The lab's catalogue (cached)."""
    return load()


def names() -> tuple[str, ...]:
    return catalogue().names


def get(name: str) -> Topology:
    return catalogue().get(name)


def selected(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The topologies chosen by `$TOPOLOGIES` (unset or empty: the comparison pair)."""
    return catalogue().choose((os.environ if environ is None else environ).get(SELECTION_VARIABLE))
