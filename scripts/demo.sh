#!/usr/bin/env bash
# The main job: an XDP packet counter loaded into the kernel, attached to a veth
# pair in a private network namespace, driven with real traffic, then removed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/pykex" demo "$@"
