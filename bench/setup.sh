#!/usr/bin/env bash
# What `pykex bench` needs beyond the test setup (scripts/bootstrap.sh): clang,
# libbpf's headers and llvm for the C baselines (llvm-mc counts the JIT's machine
# instructions), BCC for the source-to-loaded comparison, matplotlib for the chart.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "pykex bench: installing packages and loading eBPF programs needs root." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends clang llvm libbpf-dev python3-bpfcc >/dev/null
"$root/.venv/bin/python" -m pip install -q 'matplotlib>=3.7'
