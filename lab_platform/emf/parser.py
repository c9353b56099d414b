"""Parse Embedded Metric Format log lines (pure; no LocalStack import).

Specification: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
A line is a JSON object whose `_aws.CloudWatchMetrics` lists metric directives; metric values and
dimension values are members of the root object. Every dimension set of a directive yields its
own metric. A directive that breaks the specification is skipped, as CloudWatch does (the log
line itself is kept either way).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_DIMENSIONS = 30
MAX_VALUES = 100


@dataclass(frozen=True)
class EmfDatum:
    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]
    values: tuple[float, ...]
    timestamp_ms: int
    storage_resolution: int = 60


def parse_line(line: str) -> list[EmfDatum]:
    """The metric data a log line carries; [] when it is not a valid EMF document."""
    if "_aws" not in line or "CloudWatchMetrics" not in line:
        return []
    start = line.find("{")
    if start < 0:
        return []
    try:
        document = json.loads(line[start:])
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    return parse_document(document)


def parse_document(document: dict[str, Any]) -> list[EmfDatum]:
    meta = document.get("_aws")
    if not isinstance(meta, dict):
        return []
    timestamp = meta.get("Timestamp")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(timestamp, int | float) or not isinstance(directives, list):
        return []
    data: list[EmfDatum] = []
    for directive in directives:
        data.extend(_parse_directive(document, directive, int(timestamp)))
    return data


def _parse_directive(document: dict[str, Any], directive: Any, timestamp: int) -> list[EmfDatum]:
    if not isinstance(directive, dict):
        return []
    namespace = directive.get("Namespace")
    dimension_sets = directive.get("Dimensions", [])
    metrics = directive.get("Metrics")
    if not isinstance(namespace, str) or not namespace or not isinstance(metrics, list):
        return []
    if not isinstance(dimension_sets, list):
        return []
    resolved_sets: list[tuple[tuple[str, str], ...]] = []
    for dimension_set in dimension_sets:
        if not isinstance(dimension_set, list) or len(dimension_set) > MAX_DIMENSIONS:
            return []
        pairs = []
        for dimension in dimension_set:
            value = document.get(dimension) if isinstance(dimension, str) else None
            if not isinstance(value, str):
                return []  # a dimension must reference a string member
            pairs.append((dimension, value))
        resolved_sets.append(tuple(pairs))
    if not resolved_sets:
        resolved_sets = [()]
    data = []
    for metric in metrics:
        if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
            continue
        values = _values(document.get(metric["Name"]))
        if not values:
            continue
        unit = metric.get("Unit") or "None"
        resolution = 1 if metric.get("StorageResolution") == 1 else 60
        for dimensions in resolved_sets:
            data.append(
                EmfDatum(namespace, metric["Name"], unit, dimensions, values, timestamp, resolution)
            )
    return data


def _values(raw: Any) -> tuple[float, ...]:
    if isinstance(raw, bool):
        return ()
    if isinstance(raw, int | float):
        return (float(raw),)
    if isinstance(raw, list) and 0 < len(raw) <= MAX_VALUES:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
            return tuple(float(v) for v in raw)
    return ()


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]+")


def snake_case(name: str) -> str:
    """`OrdersAccepted` -> `orders_accepted`, `HTTPErrors` -> `http_errors`, `service` stays."""
    spaced = _CAMEL_BOUNDARY.sub("_", name.strip())
    cleaned = _NOT_NAME.sub("_", spaced).strip("_").lower()
    cleaned = re.sub(r"_+", "_", cleaned)
    if not cleaned:
        return "unnamed"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned
