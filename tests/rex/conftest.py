"""Fixtures of the Rex-runtime tests: every behavioural test runs on the kernel
and in host mode (``pykex.load_host``) with the same expectations.

Kernel runs pin the test process to CPU 0, where host mode runs programs, so
per-CPU values land in the same slot in both modes.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykex.compiler import Compilation
from pykex.runtime import Extension, HostExtension, load, load_host

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rex"
MODES = [pytest.param("kernel", marks=pytest.mark.kernel), "host"]

Opener = Callable[..., Extension | HostExtension]


def sample_path(name: str) -> Path:
    return SAMPLES / f"{name}.py"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_extension(mode: str) -> Iterator[Opener]:
    """``open_extension(source=...)`` compiles text, ``open_extension(sample=...)`` a
    file of examples/rex; both load in this test's mode and close at the end."""
    opened: list[Extension | HostExtension] = []
    affinity = os.sched_getaffinity(0)
    if mode == "kernel":
        os.sched_setaffinity(0, {0})

    def open_(*, source: str | None = None, sample: str | None = None,
              **host_options: int) -> Extension | HostExtension:
        if sample is not None:
            compilation = Compilation(sample_path(sample))
        else:
            assert source is not None
            compilation = Compilation("ext.py", textwrap.dedent(source))
        ext = load(compilation) if mode == "kernel" else load_host(compilation, **host_options)
        opened.append(ext)
        return ext

    try:
        yield open_
    finally:
        for ext in opened:
            ext.close()
        os.sched_setaffinity(0, affinity)


def modes(host_failure: str | None = None) -> list[object]:
    """Both modes, for ``@pytest.mark.parametrize("mode", ...)``; with
    ``host_failure`` the host run is a strict xfail giving that reason."""
    host: object = "host"
    if host_failure is not None:
        host = pytest.param("host", marks=pytest.mark.xfail(strict=True, reason=host_failure))
    return [pytest.param("kernel", marks=pytest.mark.kernel), host]
