#!/usr/bin/env bash
# Prepares a fresh Debian machine for pykex: the system tools the tests and the
# demo drive, and a virtual environment with pykex installed in editable mode.
# Safe to run again: it only installs what is missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "pykex: loading eBPF programs needs root; run this as root (sudo)." >&2
    exit 1
fi

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v ping >/dev/null || missing+=(iputils-ping)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v bpftool >/dev/null || missing+=(bpftool)
command -v clang >/dev/null || missing+=(clang)
command -v llvm-objdump >/dev/null || missing+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
[ -f /usr/include/linux/bpf.h ] || missing+=(linux-libc-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "pykex: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="$root/.venv"
stamp="$venv/.pykex-installed"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "pykex: installing Python packages into .venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -e "$root[dev]"
    touch "$stamp"
fi
