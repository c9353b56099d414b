"""Load a lab function's app.py in a unit test, against moto instead of LocalStack.

Every function's module is called `app`, so each load gets a unique module name; the fake
credentials and the removed endpoint make boto3 talk to moto's in-process AWS.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
FAKE_AWS = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def load_function(folder: str) -> ModuleType:
    """Import lambdas/<folder>/app.py afresh (its module-level state starts new)."""
    spec = importlib.util.spec_from_file_location(f"{folder}_app_{uuid.uuid4().hex}", FUNCTIONS_DIR / folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """Fake credentials, no LocalStack endpoint, and the function's own variables."""
    for key, value in {**FAKE_AWS, **variables}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
