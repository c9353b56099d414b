#!/usr/bin/env bash
# Builds (or reuses) a virtual environment of the lab with every version pinned:
#   ensure-venv.sh           .venv, the lab (LocalStack 4.14 under its lock, our plugins, tests)
#   ensure-venv.sh sam-cli   .venv-sam, the SAM CLI alone: its exact pins (boto3, click,
#                            aws-sam-translator) conflict with LocalStack's, so it gets its own
# Idempotent: a stamp of the inputs' hash skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${1:-lab}
case "$TARGET" in
    lab) VENV=.venv; INPUTS=(pyproject.toml constraints/lab-lock.txt constraints/localstack-4.14.0.txt) ;;
    sam-cli) VENV=.venv-sam; INPUTS=(constraints/sam-cli-lock.txt) ;;
    *) echo "[venv] error: unknown environment '$TARGET' (lab or sam-cli)" >&2; exit 2 ;;
esac
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
    cat "${INPUTS[@]}" | sha256sum | cut -d' ' -f1
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
if [ "$TARGET" = sam-cli ]; then
    echo "[venv] installing the SAM CLI, pinned (about a minute on a fresh machine)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r constraints/sam-cli-lock.txt 2>&1 \
        | grep -v '^WARNING: Location' || true
    "$VENV/bin/python" -m pip check >/dev/null || { "$VENV/bin/python" -m pip check; exit 1; }
    inputs_hash > "$STAMP"
    # `sam build` looks for the function's runtime (python3.13) on PATH; this venv's bin has its own
    # interpreter's name, so `export PATH=$PWD/.venv-sam/bin:$PATH` is all a build needs.
    echo "[venv] ready: $VENV ($("$VENV/bin/sam" --version)); use it with: export PATH=\"$PWD/$VENV/bin:\$PATH\""
    exit 0
fi
echo "[venv] installing pinned dependencies (about 2 minutes on a fresh machine)"
CONSTRAINTS=(-c constraints/localstack-4.14.0.txt)
[ -f constraints/lab-lock.txt ] && CONSTRAINTS+=(-c constraints/lab-lock.txt)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${CONSTRAINTS[@]}" -e '.[test]' 2>&1 \
    | grep -v -E '^WARNING: (Location|The candidate selected)|^Reason for being yanked' || true
"$VENV/bin/python" -m pip check >/dev/null || { "$VENV/bin/python" -m pip check; exit 1; }
inputs_hash > "$STAMP"
echo "[venv] ready: $VENV ($("$VENV/bin/python" --version))"
