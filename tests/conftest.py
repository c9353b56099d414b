"""Shared fixtures: a real LocalStack for the integration tests.

`localstack` is one instance per kind for the whole session with the lab's default settings.
`localstack_with` starts (and caches) an instance with extra LocalStack settings, for tests that
need, for example, a small account concurrency limit.

The kind: a container of the lab's image where a Docker engine answers (compose mode's LocalStack,
through testcontainers), else a host process (tests/support/localstack.py: default_kind()). A module marked
`host_localstack` always gets a host process: it tests what only a host process shows (the
executor's processes and folders on this machine, a function reaching a server the test runs on
the host's loopback).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support import localstack as ls


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "host_localstack: the module's LocalStack is a host process even where Docker answers")


@pytest.fixture(scope="session")
def _localstack_instances() -> Iterator[dict[str, ls.LocalStackInstance]]:
    instances: dict[str, ls.LocalStackInstance] = {}
    yield instances
    for instance in instances.values():
        instance.stop()


@pytest.fixture(scope="module")
def localstack_with(request, _localstack_instances):
    kind = "host" if request.node.get_closest_marker("host_localstack") else ls.default_kind()

    def get(**extra_env: str) -> ls.LocalStackInstance:
        key = json.dumps([kind, extra_env], sort_keys=True)
        if key not in _localstack_instances:
            _localstack_instances[key] = ls.start(extra_env, kind=kind)
        return _localstack_instances[key]

    return get


@pytest.fixture(scope="module")
def localstack(localstack_with) -> ls.LocalStackInstance:
    return localstack_with()
