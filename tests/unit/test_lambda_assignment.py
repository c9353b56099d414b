"""A function's table of execution environments can grow while an invocation looks through it."""

from __future__ import annotations

import pytest
from localstack.services.lambda_.invocation.assignment import AssignmentService

from lab_platform.lambda_assignment import EnvironmentTable, snapshot_tables


def test_adding_an_environment_while_another_invocation_looks_for_one():
    # LocalStack's own table: the lazy iteration of get_environment fails when a concurrent cold
    # start adds an environment between two of its steps
    plain = {"a": 1}
    with pytest.raises(RuntimeError, match="changed size"):
        for _ in plain.values():
            plain["b"] = 2
    table = EnvironmentTable(a=1)
    seen = []
    for env in table.values():
        table["b"] = 2  # what a concurrent cold start does
        seen.append(env)
    assert seen == [1] and dict(table) == {"a": 1, "b": 2}


def test_the_assignment_service_keeps_its_tables_as_snapshot_tables():
    class Patched(AssignmentService):
        __init__ = snapshot_tables(AssignmentService.__init__)

    service = Patched()
    try:
        table = service.environments["function-version-manager"]
        assert isinstance(table, EnvironmentTable)
        table["env-1"] = object()
        assert list(service.environments) == ["function-version-manager"]
    finally:
        service.provisioning_pool.shutdown(wait=False)
