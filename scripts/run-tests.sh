#!/usr/bin/env bash
# The README's test command: unit tests, then integration tests against real LocalStack,
# Prometheus and Locust processes that the tests start and stop themselves.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
fi
exit "$rc"
