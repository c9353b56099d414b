"""Locust's request metrics in Prometheus exposition, served from inside the Locust process.

Labels carry `topology` directly (the platform metrics get it by relabelling `account`), so the
dashboards put Locust's view and the platform's side by side. Each topology's series are created
at zero when the run starts, so "no failures" shows as 0, not as missing data.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Response-time buckets around what the notify API does: tens of ms healthy, seconds when overloaded.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class LocustMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sent = Counter(
            "locust_requests_sent", "Requests started (the arrival rate the profile holds)",
            ["topology"], registry=self.registry,
        )
        self.requests = Counter(
            "locust_requests", "Requests finished (answered or failed)",
            ["topology"], registry=self.registry,
        )
        self.failures = Counter(
            "locust_request_failures", "Requests that failed (non-2xx or no answer)",
            ["topology"], registry=self.registry,
        )
        self.response_time = Histogram(
            "locust_response_time_seconds", "Response time as Locust measured it",
            ["topology"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.target_rate = Gauge(
            "locust_target_rps", "The profile's arrival rate now, per topology",
            ["topology"], registry=self.registry,
        )
        self.phase = Gauge(
            "locust_phase", "1-based phase of the profile now (0 when no run)",
            ["profile"], registry=self.registry,
        )
        self.users = Gauge("locust_users", "Users in the arrival pool", registry=self.registry)
        self.backlog = Gauge(
            "locust_arrival_backlog", "Arrivals due but not yet sent (pool too small if > 0)",
            registry=self.registry,
        )

    def init_topology(self, topology: str) -> None:
        self.sent.labels(topology=topology)
        self.requests.labels(topology=topology)
        self.failures.labels(topology=topology)
        self.response_time.labels(topology=topology)
        self.target_rate.labels(topology=topology).set(0)

    def observe(self, topology: str, seconds: float, failed: bool) -> None:
        self.requests.labels(topology=topology).inc()
        self.response_time.labels(topology=topology).observe(seconds)
        if failed:
            self.failures.labels(topology=topology).inc()

    def serve(self, port: int, address: str) -> None:
        """Serve /metrics; under Locust's gevent monkey-patching the server thread is a greenlet."""
        start_http_server(port, addr=address, registry=self.registry)
