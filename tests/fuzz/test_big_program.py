"""A generated extension of more than 1,000 lines compiles, loads and agrees
with host mode; its load time, processed instructions and size are shown."""

from __future__ import annotations

import time

import pytest

from pykex.compiler import Compilation
from pykex.lang import check, compile_to_ir
from pykex.runtime import load
from pykex.testing.progen import BIG, differential, generate_from_seed, packets_from_seed

pytestmark = pytest.mark.kernel

SEED = 1


def test_a_thousand_line_extension_loads(capsys: pytest.CaptureFixture[str]) -> None:
    source = generate_from_seed(SEED, BIG)
    lines = len(source.splitlines())
    assert lines >= 1000
    assert source.count("\ndef ") >= BIG.functions
    assert check(source, "big.py") == []
    started = time.perf_counter()
    compilation = Compilation.from_ir(compile_to_ir(source, "big.py"))
    assert compilation.compiled.programs
    compiled_in = time.perf_counter() - started
    started = time.perf_counter()
    with load(compilation) as extension:
        loaded_in = time.perf_counter() - started
        info = extension.prog.program.info()
    with capsys.disabled():
        print(
            f"\nbig program: {lines} lines, {compilation.stats[0].instructions} instructions; "
            f"compiled in {compiled_in:.2f} s, loaded in {loaded_in:.2f} s; verifier "
            f"processed {info.verified_insns} insns; xlated {info.xlated_size} bytes, "
            f"jited {info.jited_size} bytes"
        )
    # Big in the kernel too: inlining and folding kept thousands of instructions.
    assert compilation.stats[0].instructions > 10_000
    assert info.verified_insns < 1_000_000


def test_a_thousand_line_extension_agrees_with_host_mode() -> None:
    source = generate_from_seed(SEED, BIG)
    outcome = differential(source, packets_from_seed(SEED, count=2), levels=(1,))
    assert outcome.loaded and not outcome.problems, "\n".join(outcome.problems)
