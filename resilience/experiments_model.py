"""Continuous-verification experiments as TOML files (the talk's objective / measure / condition).

    name = "order-api-latency"
    objective = "The order API answers in under 400 ms with 100-200 ms latency injected"
    topology = "<name>"                # where the condition is applied: a topology of
                                       # lab_kernel/topologies.toml (default: the remedy) or "both"
    duration = "60s"                   # how long the condition holds
    warmup = "20s"                     # condition on, measure not yet sampled (caches, windows)
    interval = "10s"                   # how often the measure is sampled after the warmup

    [measure]
    query = 'histogram_quantile(0.95, ...)'   # PromQL, evaluated as an instant query
    comparison = "<"                   # <, <=, >, >= : value `comparison` threshold is a pass
    threshold = 0.4

    [[condition]]                      # a fault document for one function (lab_faults format)
    function = "notification"
    [condition.faults.latency]
    min_ms = 100
    max_ms = 200

    [traffic]                          # optional: orders verify sends itself while it runs
    rate_per_s = 5

Pass = every sample after the warmup satisfies the comparison and at least one sample had data
(no data is no evidence, so it fails).
"""

from __future__ import annotations

import operator
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab_faults import FaultConfigError, parse_config
from lab_kernel.topologies import catalogue
from resilience.chaos import parse_duration
from resilience.lab import LabError

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


class ExperimentError(ValueError):
    """An experiment file that cannot be run; the message names the file and the problem."""


@dataclass(frozen=True)
class Condition:
    function: str
    document: dict[str, Any]  # the lab_faults document (without expires_at; verify adds one)


@dataclass(frozen=True)
class Experiment:
    path: Path
    name: str
    objective: str
    topology: str
    duration_s: float
    warmup_s: float
    interval_s: float
    query: str
    comparison: str
    threshold: float
    conditions: tuple[Condition, ...]
    traffic_rate_per_s: float = 0.0
    traffic: dict[str, Any] = field(default_factory=dict)

    def passes(self, value: float) -> bool:
        return COMPARISONS[self.comparison](value, self.threshold)

    def worst(self, values: list[float]) -> float:
        """With several series, judge the one furthest on the wrong side."""
        return max(values) if self.comparison in ("<", "<=") else min(values)


def _seconds(raw: Any, where: str, default: str | None = None) -> float:
    if raw is None:
        if default is None:
            raise ExperimentError(f"{where} is required (e.g. \"60s\")")
        raw = default
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    try:
        return parse_duration(str(raw)).total_seconds()
    except LabError as exc:
        raise ExperimentError(f"{where}: {exc}") from None


def load_experiment(path: Path) -> Experiment:
    where = path.name
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExperimentError(f"{where}: cannot read TOML: {exc}") from None
    measure = data.get("measure")
    if not isinstance(measure, dict) or not isinstance(measure.get("query"), str):
        raise ExperimentError(f"{where}: [measure] needs a PromQL `query`")
    comparison = measure.get("comparison", "<")
    if comparison not in COMPARISONS:
        raise ExperimentError(f"{where}: measure.comparison must be one of {list(COMPARISONS)}")
    threshold = measure.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ExperimentError(f"{where}: measure.threshold must be a number")
    raw_conditions = data.get("condition", [])
    if not isinstance(raw_conditions, list) or not raw_conditions:
        raise ExperimentError(f"{where}: at least one [[condition]] (a fault configuration)")
    conditions = []
    for i, raw in enumerate(raw_conditions):
        if not isinstance(raw, dict) or not isinstance(raw.get("function"), str):
            raise ExperimentError(f"{where}: condition[{i}] needs a `function`")
        document = {k: v for k, v in raw.items() if k != "function"}
        try:
            parse_config(document)
        except FaultConfigError as exc:
            raise ExperimentError(f"{where}: condition[{i}]: {exc}") from None
        conditions.append(Condition(raw["function"], document))
    duration = _seconds(data.get("duration"), f"{where}: duration")
    warmup = _seconds(data.get("warmup"), f"{where}: warmup", "15s")
    interval = _seconds(data.get("interval"), f"{where}: interval", "10s")
    if warmup >= duration:
        raise ExperimentError(f"{where}: warmup ({warmup:g} s) must be shorter than duration")
    traffic = data.get("traffic") or {}
    rate = traffic.get("rate_per_s", 0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 50:
        raise ExperimentError(f"{where}: traffic.rate_per_s must be a number in [0, 50]")
    return Experiment(
        path=path,
        name=str(data.get("name") or path.stem),
        objective=str(data.get("objective") or ""),
        topology=str(data.get("topology") or catalogue().remedy),
        duration_s=duration,
        warmup_s=warmup,
        interval_s=max(1.0, interval),
        query=measure["query"],
        comparison=comparison,
        threshold=float(threshold),
        conditions=tuple(conditions),
        traffic_rate_per_s=float(rate),
        traffic=traffic,
    )
