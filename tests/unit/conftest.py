"""Unit tests load functions' app.py from their folders; in a Lambda zip the packages under
lambdas/common/ (lab_faults, lab_breaker) sit beside app.py, so put them on the path here too."""

from __future__ import annotations

import sys
from pathlib import Path

COMMON = Path(__file__).resolve().parents[2] / "lambdas" / "common"
if str(COMMON) not in sys.path:
    sys.path.insert(0, str(COMMON))
