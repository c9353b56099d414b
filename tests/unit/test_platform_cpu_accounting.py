"""Which bucket a request's or a thread's CPU goes to (lab_platform/cpu_accounting.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

cpu_accounting = pytest.importorskip("lab_platform.cpu_accounting")


def _context(service: str | None = None, path: str = "/", host: str = "localhost:4566"):
    model = SimpleNamespace(service_name=service) if service else None
    return SimpleNamespace(service=model, request=SimpleNamespace(path=path, host=host))


@pytest.mark.parametrize(
    ("context", "bucket"),
    [
        (_context("lambda", "/2015-03-31/functions/f/invocations"), "lambda"),
        (_context(None, "/_aws/execute-api/abc123/Prod/notify"), "execute-api"),
        (_context(None, "/Prod/notify", "abc123.execute-api.localhost.localstack.cloud:4566"), "execute-api"),
        (_context(None, "/_lab/metrics"), "lab"),
        (_context(None, "/_localstack/health"), "localstack"),
        (_context(None, "/favicon.ico"), "other"),
    ],
)
def test_a_request_is_charged_to_its_service(context, bucket):
    assert cpu_accounting.service_of(context) == bucket


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("asgi_gw_12", "asgi_gw"),
        ("lambda-poller-DeliveryFunction:$LATEST-functhread7", "lambda-poller-DeliveryFunction:$LATEST-functhread"),
        ("lab-emf", "lab-emf"),
        ("Thread-7 (run)", "Thread (run)"),
        ("42", "unnamed"),
    ],
)
def test_a_thread_is_charged_to_its_name_without_counters(name, kind):
    assert cpu_accounting.thread_kind(name) == kind
