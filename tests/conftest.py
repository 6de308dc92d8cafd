"""Suite-wide fixtures. Kernel tests need root; everything else runs anywhere."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root to load BPF programs")
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(skip)
