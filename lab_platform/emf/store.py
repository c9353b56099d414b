"""EMF metrics as Prometheus families (docs/METRICS.md, "Embedded Metric Format").

Each EMF metric is one family named after it in snake case; its series carry `namespace`,
`account`, `region` and one label per EMF dimension. Dimension sets may differ between lines of
the same metric (Powertools adds dimensions per metric), so families are built by a custom
collector rather than prometheus_client's fixed-label classes.
- unit Count -> counter `emf_<metric>_total` (sum of the values)
- Milliseconds / Seconds -> histogram `emf_<metric>_seconds` (values in seconds)
- any other unit -> gauge `emf_<metric>` (last value)
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from lab_platform.emf.parser import EmfDatum, snake_case

LOG = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
RESERVED_LABELS = frozenset({"namespace", "account", "region", "le", "quantile"})
TIME_UNITS = {"Milliseconds": 0.001, "Seconds": 1.0, "Microseconds": 0.000001}


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    count: int = 0
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.buckets[bisect.bisect_left(BUCKETS, value)] += 1
        self.count += 1
        self.total += value


@dataclass
class _Family:
    kind: str  # counter | histogram | gauge
    name: str  # without _total
    series: dict[tuple[tuple[str, str], ...], object] = field(default_factory=dict)


def family_for(metric_name: str, unit: str) -> tuple[str, str]:
    base = "emf_" + snake_case(metric_name)
    if unit == "Count":
        return "counter", base
    if unit in TIME_UNITS:
        return "histogram", base + "_seconds"
    return "gauge", base


def label_name(dimension: str) -> str:
    name = snake_case(dimension)
    return f"dimension_{name}" if name in RESERVED_LABELS else name


class EmfStore(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}

    def record(self, datum: EmfDatum, account: str, region: str) -> None:
        kind, name = family_for(datum.name, datum.unit)
        labels = [("namespace", datum.namespace), ("account", account), ("region", region)]
        labels += [(label_name(k), v) for k, v in datum.dimensions]
        key = tuple(sorted(labels))
        with self._lock:
            family = self._families.setdefault(name, _Family(kind, name))
            if family.kind != kind:
                LOG.warning(
                    "EMF metric %s emitted as %s and %s; keeping %s",
                    name,
                    family.kind,
                    kind,
                    family.kind,
                )
                return
            if kind == "counter":
                family.series[key] = float(family.series.get(key, 0.0)) + sum(datum.values)
            elif kind == "histogram":
                histogram = family.series.setdefault(key, _Histogram())
                for value in datum.values:
                    histogram.observe(value * TIME_UNITS[datum.unit])
            else:
                family.series[key] = datum.values[-1]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = [(f.kind, f.name, dict(f.series)) for f in self._families.values()]
        for kind, name, series in sorted(families, key=lambda item: item[1]):
            metric = Metric(name, f"Embedded Metric Format metric {name}", kind)
            for key, state in sorted(series.items()):
                labels = dict(key)
                if kind == "counter":
                    metric.add_sample(name + "_total", labels, state)
                elif kind == "gauge":
                    metric.add_sample(name, labels, state)
                else:
                    cumulative = 0
                    for bound, count in zip((*BUCKETS, float("inf")), state.buckets, strict=True):
                        cumulative += count
                        metric.add_sample(
                            name + "_bucket", {**labels, "le": floatToGoString(bound)}, cumulative
                        )
                    metric.add_sample(name + "_count", labels, state.count)
                    metric.add_sample(name + "_sum", labels, state.total)
            yield metric


STORE = EmfStore()
EMF_REGISTRY = CollectorRegistry(auto_describe=False)
EMF_REGISTRY.register(STORE)
