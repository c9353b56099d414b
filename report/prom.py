"""Prometheus HTTP API: range queries for the plots, instant queries for the headline figures."""

from __future__ import annotations

import math
from dataclasses import dataclass

import requests


class PrometheusError(RuntimeError):
    pass


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix seconds, value), NaN dropped

    def label(self, *keys: str) -> str:
        return " ".join(self.labels.get(k, "") for k in keys).strip() or "value"

    @property
    def max(self) -> float | None:
        return max((v for _, v in self.points), default=None)

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None

    def counted(self, start: float, step: float) -> float:
        """How much a counter series grew over its points, counting through restarts.

        A LocalStack restarted between two runs starts its counters at 0 under the same labels, and
        for a few minutes Prometheus still answers the old process's last value at the window's
        start: a drop is a restart, after which the new value is all new counts. A series whose
        first point comes after the window's start was created during it: it counts from 0.
        """
        total = 0.0
        previous = 0.0 if not self.points or self.points[0][0] > start + step else None
        for _, value in self.points:
            if previous is not None:
                total += value - previous if value >= previous else value
            previous = value
        return total


class Prometheus:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> list[dict]:
        try:
            response = requests.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise PrometheusError(f"Prometheus at {self.url} unreachable ({error.__class__.__name__}): run `make up` first") from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(f"Prometheus answered {response.status_code} without JSON for {params.get('query')!r}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"query {params.get('query')!r} failed: {body.get('error', response.status_code)}")
        return body["data"]["result"]

    def range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        result = self._get(
            "/api/v1/query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        out = []
        for item in result:
            points = [(float(t), float(v)) for t, v in item.get("values", []) if not math.isnan(float(v))]
            out.append(Series(dict(item.get("metric", {})), points))
        return out

    def instant(self, query: str, at: float | None = None) -> list[Series]:
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        out = []
        for item in self._get("/api/v1/query", params):
            t, v = item["value"]
            value = float(v)
            out.append(Series(dict(item.get("metric", {})), [] if math.isnan(value) else [(float(t), value)]))
        return out

    def by_topology(self, query: str, at: float | None = None) -> dict[str, float]:
        """An instant query's values keyed by the `topology` label Prometheus adds."""
        return {s.labels.get("topology", ""): s.points[0][1] for s in self.instant(query, at) if s.points}

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=3).status_code == 200
        except requests.RequestException:
            return False
