"""Every behavioural runtime test runs twice: on the kernel and in host mode.

Kernel runs pin the test process to CPU 0 for their duration, so per-CPU map
values land where host mode (which runs programs on CPU 0) puts them and the
two modes can be compared value for value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from pykex.compiler import Compilation
from pykex.ir.nodes import ModuleIR
from pykex.runtime import Extension, HostExtension, load, load_host

MODES = [pytest.param("kernel", marks=pytest.mark.kernel), "host"]



@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_extension(mode: str) -> Iterator[Callable[..., Extension | HostExtension]]:
    """Opens extensions in this test's mode; closes them when the test ends."""
    opened: list[Extension | HostExtension] = []
    affinity = os.sched_getaffinity(0)
    if mode == "kernel":
        os.sched_setaffinity(0, {0})

    def open_(what: ModuleIR | Compilation, **host_options: int) -> Extension | HostExtension:
        """``host_options`` (``loop_budget``, ``cpu``...) apply in host mode only."""
        compilation = what if isinstance(what, Compilation) else Compilation.from_ir(what)
        ext = load(compilation) if mode == "kernel" else load_host(compilation, **host_options)
        opened.append(ext)
        return ext

    try:
        yield open_
    finally:
        for ext in opened:
            ext.close()
        os.sched_setaffinity(0, affinity)
