"""The zygote's shared pages: objects made immortal keep their reference counts (no page writes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import lab_platform.executor.zygote as zygote

ZYGOTE_DIR = str(Path(zygote.__file__).parent)

# Run in a fresh interpreter: the counts of this test process's own objects must not change.
PROBE = """
import gc, sys
sys.path.insert(0, {zygote_dir!r})
import zygote
data = {{"module-level": ["list", "of", "values"]}}
made = zygote._immortalize_heap()
before = sys.getrefcount(data), sys.getrefcount(data["module-level"])
refs = [data, data["module-level"]] * 100  # 200 new references
after = sys.getrefcount(data), sys.getrefcount(data["module-level"])
late = {{"made": "after"}}
late_before = sys.getrefcount(late)
more = [late] * 10
print(made, before == after, sys.getrefcount(late) - late_before)
"""


@pytest.mark.skipif(not ((3, 12) <= sys.version_info[:2] <= (3, 13)), reason="immortal objects: CPython 3.12-3.13")
def test_objects_alive_before_the_fork_stop_counting_references_and_later_ones_still_count():
    out = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE.format(zygote_dir=ZYGOTE_DIR)],
                         capture_output=True, text=True, check=True).stdout.split()
    made, unchanged, late_delta = int(out[0]), out[1], int(out[2])
    assert made > 1000  # the interpreter's own modules and functions, and the probe's data
    assert unchanged == "True"  # 200 references taken, no count written
    assert late_delta == 10  # an object made after the call is an ordinary object


def test_an_interpreter_without_immortal_objects_is_left_alone(monkeypatch):
    monkeypatch.setattr(zygote.sys, "version_info", (3, 11, 9))
    assert zygote._immortalize_heap() == 0
