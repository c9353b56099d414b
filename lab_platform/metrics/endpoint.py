"""`GET /_lab/metrics` on LocalStack's own port: the platform metrics in Prometheus exposition."""

from __future__ import annotations

from localstack.http import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rolo import Request

from lab_platform.metrics.registry import REGISTRY

PATH = "/_lab/metrics"
_rules: list = []


def serve_metrics(request: Request, **_: str) -> Response:
    from lab_platform.emf.store import EMF_REGISTRY  # EMF families live in their own registry

    body = generate_latest(REGISTRY) + generate_latest(EMF_REGISTRY)
    return Response(
        body,
        status=200,
        mimetype=CONTENT_TYPE_LATEST.split(";")[0],
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


def register_route() -> None:
    from localstack.services.edge import ROUTER

    if not _rules:
        _rules.append(ROUTER.add(PATH, endpoint=serve_metrics, methods=["GET"]))
