"""bootstrap.packaging on a scratch lambdas/ tree: what goes into a zip, caching, reproducibility.

The scratch function pins no third-party package, so pip is not run here; the real functions'
pip installs are exercised by the integration tests (and by `make up`).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from bootstrap import packaging
from bootstrap.progress import Progress
from bootstrap.topology import NOTIFICATION


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    lambdas = tmp_path / "lambdas"
    fn = lambdas / "notification"
    fn.mkdir(parents=True)
    (fn / "app.py").write_text("def handler(event, context):\n    return 'ok'\n")
    (fn / "requirements.txt").write_text("# nothing beyond the runtime\n")
    (fn / "__pycache__").mkdir()
    (fn / "__pycache__" / "app.cpython-313.pyc").write_bytes(b"stale bytecode")
    common = lambdas / "common"
    (common / "lab_lib").mkdir(parents=True)
    (common / "lab_lib" / "__init__.py").write_text("VALUE = 1\n")
    (common / "notes").mkdir()  # not a package: no __init__.py
    (common / "notes" / "todo.txt").write_text("not packaged\n")
    return lambdas


def build(tree: Path, out: io.StringIO | None = None) -> packaging.Package:
    return packaging.build(NOTIFICATION, Progress(out=out or io.StringIO()), lambdas_dir=tree,
                           build_dir=tree.parent / "build")


def names(package: packaging.Package) -> list[str]:
    with zipfile.ZipFile(package.zip_path) as archive:
        return archive.namelist()


def test_zip_holds_the_function_and_every_common_package_but_no_bytecode(tree):
    package = build(tree)
    assert sorted(names(package)) == ["app.py", "lab_lib/__init__.py", "requirements.txt"]
    assert package.cached is False


def test_second_build_is_a_cache_hit_with_the_same_code_sha256(tree):
    first = build(tree)
    out = io.StringIO()
    second = build(tree, out)
    assert second.cached is True and second.code_sha256 == first.code_sha256
    assert "cached" in out.getvalue()


def test_any_input_change_rebuilds_and_identical_inputs_give_identical_bytes(tree):
    first = build(tree)
    (tree / "common" / "lab_lib" / "__init__.py").write_text("VALUE = 2\n")
    changed = build(tree)
    assert changed.cached is False and changed.code_sha256 != first.code_sha256
    (tree / "common" / "lab_lib" / "__init__.py").write_text("VALUE = 1\n")
    reverted = build(tree)
    # reproducible zips: same inputs, same CodeSha256, so provisioning sees nothing to update
    assert reverted.cached is False and reverted.code_sha256 == first.code_sha256


def test_code_sha256_is_lambdas_base64_sha256(tree):
    import base64
    import hashlib

    package = build(tree)
    assert package.code_sha256 == base64.b64encode(hashlib.sha256(package.read()).digest()).decode()


def test_missing_requirements_or_app_fail_clearly(tree):
    (tree / "notification" / "requirements.txt").unlink()
    with pytest.raises(packaging.PackagingError, match="requirements.txt.*pins its dependencies"):
        build(tree)
    (tree / "notification" / "app.py").unlink()
    with pytest.raises(packaging.PackagingError, match="app.py is missing"):
        build(tree)
    with pytest.raises(packaging.PackagingError, match="unknown function"):
        packaging.build("NoSuchFunction", Progress(out=io.StringIO()), lambdas_dir=tree)


def test_real_functions_pin_every_requirement_exactly():
    for folder in ("notification", "delivery", "slow_api"):
        path = packaging.LAMBDAS_DIR / folder / "requirements.txt"
        lines = [l.split("#", 1)[0].strip() for l in path.read_text().splitlines()]
        requirements = [l for l in lines if l]
        assert requirements, path
        assert all("==" in r for r in requirements), (path, requirements)
        assert not any(r.lower().startswith(("boto3", "botocore")) for r in requirements), "runtime provides boto3"
