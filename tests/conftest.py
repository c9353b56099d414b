"""Shared fixtures: a real LocalStack for the integration tests.

`localstack` is one instance for the whole session with the lab's default settings.
`localstack_with` starts (and caches) an instance with extra LocalStack settings, for tests that
need, for example, a small account concurrency limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support import localstack as ls


@pytest.fixture(scope="session")
def _localstack_instances() -> Iterator[dict[str, ls.LocalStackInstance]]:
    instances: dict[str, ls.LocalStackInstance] = {}
    yield instances
    for instance in instances.values():
        instance.stop()


@pytest.fixture(scope="session")
def localstack_with(_localstack_instances):
    def get(**extra_env: str) -> ls.LocalStackInstance:
        key = json.dumps(extra_env, sort_keys=True)
        if key not in _localstack_instances:
            _localstack_instances[key] = ls.start(extra_env)
        return _localstack_instances[key]

    return get


@pytest.fixture(scope="session")
def localstack(localstack_with) -> ls.LocalStackInstance:
    return localstack_with()
