"""Fixtures of the BPF object tests."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykex.kernel.fs import BPFFS_ROOT, ensure_bpffs


@pytest.fixture
def bpffs_dir() -> Iterator[Path]:
    """A fresh directory under bpffs, removed with everything pinned in it."""
    ensure_bpffs()
    path = Path(BPFFS_ROOT) / f"pykex_elf_{secrets.token_hex(4)}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
