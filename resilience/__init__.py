"""Resilience toolkit CLIs: chaos (failure injection), breaker, kill switch, continuous verification.

The libraries that run inside functions live in `lambdas/common/` (packaged into every zip); the
CLIs import the very same code (e.g. the fault validator) so what they accept the functions run.
"""

from __future__ import annotations

import sys
from pathlib import Path

COMMON = Path(__file__).resolve().parent.parent / "lambdas" / "common"
if str(COMMON) not in sys.path:
    sys.path.insert(0, str(COMMON))
