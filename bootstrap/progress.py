"""Progress lines and the tally of what a run created, changed or left alone."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, TextIO

Action = Literal["created", "updated", "unchanged", "deleted", "absent", "built", "cached"]


@dataclass
class Progress:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    counts: Counter[str] = field(default_factory=Counter)
    changes: list[str] = field(default_factory=list)
    _started: float = field(default_factory=time.monotonic)

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def record(self, scope: str, what: str, action: Action, detail: str = "") -> None:
        self.counts[action] += 1
        if action in ("created", "updated", "deleted"):
            self.changes.append(f"{scope}: {what} {action}")
        suffix = f" ({detail})" if detail else ""
        self.say(f"  [{scope}] {what}: {action}{suffix}")

    @property
    def changed(self) -> int:
        return self.counts["created"] + self.counts["updated"] + self.counts["deleted"]

    def elapsed(self) -> float:
        return time.monotonic() - self._started
