"""Every minimised program in ``regressions/``: it loads, the kernel agrees
with host mode at every optimisation level, and the register allocator
keeps its live values apart. Each file's docstring says what once broke."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pykex.ir.passes import optimize
from pykex.lang import compile_to_ir
from pykex.testing.progen import differential
from tests.codegen.test_regalloc_invariant import conflicts

REGRESSIONS = sorted((Path(__file__).parent / "regressions").glob("*.py"))
PACKETS = [bytes(range(64)), bytes(14), bytes(0xFF - i % 256 for i in range(100))]


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_allocation_keeps_live_values_apart(path: Path) -> None:
    module = compile_to_ir(path.read_text(), path.name)
    for level in ("O0", "O1"):
        optimized = copy.deepcopy(module)
        optimize(optimized, level)
        for program in optimized.programs:
            assert conflicts(program.function) == []


@pytest.mark.kernel
@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_kernel_agrees_with_host_mode(path: Path) -> None:
    outcome = differential(path.read_text(), PACKETS, filename=path.name)
    assert outcome.accepted, "\n".join(outcome.diagnostics)
    assert outcome.loaded and not outcome.problems, "\n".join(outcome.problems)
