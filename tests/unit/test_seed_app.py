"""The seed repository's deploy helpers (issue #18 point 4): its `make deps` without Poetry."""

from __future__ import annotations

import tomllib

from bootstrap.seed_app import export_group, requirements

# The shape of the seed's pyproject.toml and its Poetry 1.4 lock, cut down.
PYPROJECT = """
[tool.poetry]
name = "seed"
[tool.poetry.dependencies]
python = "^3.9"
[tool.poetry.group.dev.dependencies]
pytest = "^7.2.0"
[tool.poetry.group.notification.dependencies]
aws-lambda-powertools = "^2.11.0"
[tool.poetry.group.delivery.dependencies]
aws-lambda-powertools = "^2.11.0"
requests = "^2.28.2"
tenacity = "^8.2.2"
"""

LOCK = """
[[package]]
name = "aws-lambda-powertools"
version = "2.13.0"
[package.dependencies]
typing-extensions = ">=4.4.0,<5.0.0"
[package.extras]
tracer = ["aws-xray-sdk (>=2.8.0,<3.0.0)"]

[[package]]
name = "typing-extensions"
version = "4.5.0"

[[package]]
name = "requests"
version = "2.28.2"
[package.dependencies]
certifi = ">=2017.4.17"
urllib3 = ">=1.21.1,<1.27"
PySocks = {version = ">=1.5.6", optional = true}
[package.extras]
socks = ["PySocks (>=1.5.6,!=1.5.7)"]

[[package]]
name = "certifi"
version = "2022.12.7"

[[package]]
name = "urllib3"
version = "1.26.15"

[[package]]
name = "tenacity"
version = "8.2.2"

[[package]]
name = "exceptiongroup"
version = "1.1.1"

[[package]]
name = "pytest"
version = "7.2.2"
[package.dependencies]
exceptiongroup = {version = ">=1.0.0rc8", markers = "python_version < \\"3.11\\""}
"""


def test_a_group_exports_its_closure_pinned_to_the_lock_without_optional_or_other_groups():
    pyproject, lock = tomllib.loads(PYPROJECT), tomllib.loads(LOCK)
    assert export_group(pyproject, lock, "notification") == [
        "aws-lambda-powertools==2.13.0", "typing-extensions==4.5.0"]
    assert export_group(pyproject, lock, "delivery") == [
        "aws-lambda-powertools==2.13.0", "certifi==2022.12.7", "requests==2.28.2",
        "tenacity==8.2.2", "typing-extensions==4.5.0", "urllib3==1.26.15"]


def test_markers_are_evaluated_for_the_functions_python():
    pyproject, lock = tomllib.loads(PYPROJECT), tomllib.loads(LOCK)
    assert "exceptiongroup==1.1.1" in export_group(pyproject, lock, "dev", python="3.9")
    assert "exceptiongroup==1.1.1" not in export_group(pyproject, lock, "dev", python="3.11")


def test_requirements_are_written_into_each_service_folder_named_after_a_group(tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "poetry.lock").write_text(LOCK)
    for folder in ("notification", "delivery", "other", "__pycache__"):
        (tmp_path / "services" / folder).mkdir(parents=True)
    written = requirements(tmp_path)
    assert [p.parent.name for p in written] == ["delivery", "notification"]
    assert (tmp_path / "services/notification/requirements.txt").read_text() == (
        "aws-lambda-powertools==2.13.0\ntyping-extensions==4.5.0\n")
    assert not (tmp_path / "services/other/requirements.txt").exists()


def test_deploy_and_endpoints_say_what_is_missing_in_one_line(tmp_path):
    import pytest

    from bootstrap.seed_app import main

    with pytest.raises(SystemExit, match="make seed-app SEED_DIR=<a clone of https://github.com/walmsles"):
        main(["deploy", ""])
    with pytest.raises(SystemExit, match=r"is not a clone of the seed: git clone https://github.com/walmsles/serverless-observability"):
        main(["deploy", str(tmp_path), "--endpoint", "http://127.0.0.1:1"])
    with pytest.raises(SystemExit):  # argparse: a topology the lab does not know, or not 12 digits
        main(["endpoints", "--account", "nfc=444444444444"])
    with pytest.raises(SystemExit):
        main(["endpoints", "--account", "no-flow-control=4444"])
