#!/usr/bin/env bash
# Builds (or reuses) the lab's virtual environment in .venv with every version pinned.
# Idempotent: a stamp of the inputs' hash skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP="$VENV/.lab-installed"

find_python() {
    local candidate
    for candidate in "${LAB_PYTHON:-}" python3.13 python3.12 python3 \
        "$HOME"/.pyenv/versions/3.13*/bin/python3 "$HOME"/.pyenv/versions/3.12*/bin/python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ] || continue
        # pyenv shims exist for versions that are not selected: ask the interpreter itself
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

inputs_hash() {
    cat pyproject.toml constraints/*.txt | sha256sum | cut -d' ' -f1
}

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(inputs_hash)" ]; then
    echo "[venv] $VENV is up to date"
    exit 0
fi

if ! PYTHON=$(find_python); then
    echo "[venv] error: Python >= 3.12 not found. Install it (e.g. 'pyenv install 3.12' or 'apt-get install python3.12') or set LAB_PYTHON=/path/to/python3.12" >&2
    exit 1
fi

echo "[venv] creating $VENV with $PYTHON ($("$PYTHON" --version 2>&1))"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check pip==25.3 2>&1 | grep -v '^WARNING: Location' || true
echo "[venv] installing pinned dependencies (about 2 minutes on a fresh machine)"
CONSTRAINTS=(-c constraints/localstack-4.14.0.txt)
[ -f constraints/lab-lock.txt ] && CONSTRAINTS+=(-c constraints/lab-lock.txt)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${CONSTRAINTS[@]}" -e '.[test]' 2>&1 \
    | grep -v -E '^WARNING: (Location|The candidate selected)|^Reason for being yanked' || true
"$VENV/bin/python" -m pip check >/dev/null || { "$VENV/bin/python" -m pip check; exit 1; }
inputs_hash > "$STAMP"
echo "[venv] ready: $VENV ($("$VENV/bin/python" --version))"
