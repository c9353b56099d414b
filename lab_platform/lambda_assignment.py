"""Concurrent cold starts no longer fail an invocation with "dictionary changed size".

LocalStack 4.14's `AssignmentService.get_environment` looks for a free execution environment by
iterating the function's table of environments (a dict) lazily, while other invocations of the
same burst start environments and add them to that table. When an addition lands between two
steps of the iteration, the invocation fails with `RuntimeError: dictionary changed size during
iteration` (seen in CI: one of 100 concurrent cold invokes answered ServiceException). AWS never
fails an invocation for that.

The fix is to the table, not to the code that reads it: each function's table is a dict whose
`values()` is a snapshot, so every reader iterates a list that no other thread can change.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)


class EnvironmentTable(dict):
    """A function's execution environments by id; `values()` is a snapshot (a list)."""

    def values(self):  # type: ignore[override] - a list is what every caller iterates
        # list() of a dict runs in C under the GIL: no other thread can change it meanwhile
        return list(super().values())


def snapshot_tables(original_init):
    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.environments = defaultdict(EnvironmentTable, self.environments)

    return __init__


@hooks.on_infra_start()
def lab_lambda_assignment_snapshot() -> None:
    from localstack.services.lambda_.invocation.assignment import AssignmentService

    AssignmentService.__init__ = snapshot_tables(AssignmentService.__init__)
    LOG.info("lab platform: execution environment tables iterated as snapshots")
