#!/usr/bin/env bash
# Runs the whole test suite against the real kernel (needs root).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh"
cd "$root"
.venv/bin/ruff check src tests
exec .venv/bin/python -m pytest "$@"
