"""Whole programs through generate/load: random code, optimised code, failures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykex.bpf import dsl
from pykex.bpf.codegen import VerifierRejectionError, generate, load
from pykex.bpf.insn import R0, R1, SourceLocation
from pykex.ir.interp import Interpreter
from pykex.ir.nodes import U8, U16, Load, PacketPtr, Return, Store
from pykex.ir.passes import optimize
from pykex.kernel.fd import open_fds
from tests.ir.test_passes import OPS, random_program

from .harness import XDP_DROP, XDP_PASS, FunctionBuilder, loaded, module

pytestmark = pytest.mark.kernel


@settings(max_examples=25, deadline=None)
@given(
    ops=st.lists(st.tuples(OPS, st.integers(-2, 30), st.integers(-2, 30)), min_size=1,
                 max_size=30),
    inputs=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    packet=st.binary(min_size=16, max_size=40),
    level=st.sampled_from(["O0", "O1"]),
)
def test_random_straight_line_programs(ops, inputs, packet, level) -> None:
    reference = Interpreter(random_program(ops, inputs)).run("r", packet)
    ir = random_program(ops, inputs)
    optimize(ir, level)
    with loaded(ir) as (_, live):
        kernel = live.programs["r"].test_run(packet)
    assert kernel.retval == reference.retval
    assert kernel.data_out[: len(packet)] == reference.packet


def test_bounds_checks_eliminated_code_still_verifies() -> None:
    f = FunctionBuilder("headers")
    eth, ip, proto = f.temp("eth", True), f.temp("ip", True), f.temp("proto", True)
    kind, protocol = f.temp("kind"), f.temp("protocol")
    f(PacketPtr(eth, 0, 34, "short"), PacketPtr(ip, 14, 20, "short"))
    f(PacketPtr(proto, 23, 1, "short"))
    f(Load(kind, eth, 12, U16, big_endian=True), Load(protocol, proto, 0, U8))
    f(Store(ip, 0, kind, U16), Store(eth, 0, protocol, U8), Return(XDP_PASS))
    f.label("short")
    f(Return(XDP_DROP))
    ir = module((f, "xdp", 0))
    optimize(ir, "O1")
    assert sum(isinstance(i, PacketPtr) for i in ir.programs[0].function.blocks[0].instrs) == 1
    packet = bytes(range(60))
    with loaded(ir) as (_, live):
        kernel = live.programs["headers"].test_run(packet)
        short = live.programs["headers"].test_run(bytes(20))
    host = Interpreter(ir).run("headers", packet)
    assert kernel.retval == host.retval == XDP_PASS
    assert kernel.data_out == host.packet
    assert kernel.data_out[14:16] == packet[12:14][::-1]  # stored little-endian
    assert short.retval == XDP_DROP


def test_verifier_rejection_names_the_python_line_and_leaks_nothing() -> None:
    f = FunctionBuilder("broken")
    f(Return(0))
    compiled = generate(module((f, "xdp", 0)))
    program = compiled.programs[0]
    # Dereference r0 without its NULL check: what a backend bug would look like.
    where = SourceLocation("test_prog.py", 7, 4, "x = table[key]")
    program.instructions[-2:-1] = [
        dsl.mov64(R1, 0).with_source(where),
        dsl.ldx(8, R0, R1, 0).with_source(where),
    ]
    before = len(open_fds())
    with pytest.raises(VerifierRejectionError) as caught:
        load(compiled)
    message = str(caught.value)
    assert message.startswith("pykex bug")
    assert "test_prog.py:7" in message and "broken" in message
    assert caught.value.slot is not None
    assert len(open_fds()) == before
