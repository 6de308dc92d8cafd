"""Every example test runs twice: on the kernel and in host mode (``pykex.load_host``).

The ``open_example`` fixture compiles ``examples/<name>.py`` in the test's
mode and closes what it opened when the test ends (links included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykex.runtime import Extension, HostExtension, load, load_host

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MODES = [pytest.param("kernel", marks=pytest.mark.kernel), "host"]


def example_path(name: str) -> Path:
    return EXAMPLES / f"{name}.py"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_example(mode: str) -> Iterator[Callable[[str], Extension | HostExtension]]:
    opened: list[Extension | HostExtension] = []

    def open_(name: str) -> Extension | HostExtension:
        path = example_path(name)
        extension = load(path) if mode == "kernel" else load_host(path)
        opened.append(extension)
        return extension

    try:
        yield open_
    finally:
        for extension in opened:
            extension.close()
