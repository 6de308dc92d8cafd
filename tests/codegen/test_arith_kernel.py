"""Arithmetic at every width and signedness: kernel == interpreter == Python.

One XDP program per type reads operands from the packet, computes every
operation and writes each result's full 64-bit register into the packet, so
the comparison also checks that results are normalised (zero- or
sign-extended) in the register.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pykex.ir.interp import Interpreter
from pykex.ir.nodes import (
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    BinOp,
    Branch,
    Cast,
    Compare,
    Jump,
    Load,
    PacketPtr,
    Return,
    Scalar,
    Store,
    UnOp,
)

from .harness import XDP_DROP, XDP_PASS, FunctionBuilder, loaded, module, u64s

pytestmark = pytest.mark.kernel

TYPES = [U8, U16, U32, U64, I8, I16, I32, I64]
PLAIN_OPS = ["add", "sub", "mul", "and", "or", "xor"]
SHIFT_OPS = ["shl", "shr"]
UNARY_OPS = ["neg", "invert"]
COMPARE_OPS = ["eq", "ne", "lt", "le", "gt", "ge"]
RESULTS = 64  # result slots of 8 bytes after the 32-byte operand area
PACKET = 32 + 8 * RESULTS


def wrap(ty: Scalar, value: int) -> int:
    """Python's value wrapped into ty's range: the reference semantics."""
    value %= 1 << ty.bits
    return value - (1 << ty.bits) if ty.signed and value >= 1 << (ty.bits - 1) else value


def reference(op: str, a: int, b: int, ty: Scalar) -> int:
    if op == "shl":
        return 0 if b >= ty.bits else wrap(ty, a << b)
    if op == "shr":
        return a >> b if ty.signed else (a >> b if b < ty.bits else 0)
    return wrap(ty, {
        "add": a + b, "sub": a - b, "mul": a * b, "and": a & b, "or": a | b, "xor": a ^ b,
        "div": a // b if b else 0, "mod": a % b if b else 0, "neg": -a, "invert": ~a,
    }[op])  # fmt: skip


def compare_reference(op: str, a: int, b: int) -> int:
    return int({"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b,
                "ge": a >= b}[op])  # fmt: skip


def arith_program(ty: Scalar) -> FunctionBuilder:
    f = FunctionBuilder(f"arith_{ty}")
    p = f.temp("p", pointer=True)
    a, b, c = f.temp("a"), f.temp("b"), f.temp("c")
    f(
        PacketPtr(p, 0, PACKET, "short"),
        Load(a, p, 0, ty),
        Load(b, p, 8, ty),
        Load(c, p, 16, U8),
    )
    slot = 0

    def keep(instr_dst: object) -> None:
        nonlocal slot
        f(Store(p, 32 + 8 * slot, instr_dst, U64))
        slot += 1

    for op in PLAIN_OPS:
        r = f.temp(op)
        f(BinOp(r, op, a, b, ty))
        keep(r)
    for op in SHIFT_OPS:
        r = f.temp(op)
        f(BinOp(r, op, a, c, ty))
        keep(r)
    for op in UNARY_OPS:
        r = f.temp(op)
        f(UnOp(r, op, a, ty))
        keep(r)
    for op in COMPARE_OPS:
        for signed in (False, True):
            r = f.temp(op)
            f(Compare(r, op, a, b, signed))
            keep(r)
    for to in TYPES:
        r = f.temp("cast")
        f(Cast(r, a, to))
        keep(r)
    # Constant operands, including ones that need a 64-bit immediate.
    for constant in (1, -7 if ty.signed else 7, ty.max, ty.min):
        r = f.temp("k")
        f(BinOp(r, "add", a, constant, ty))
        keep(r)
        r = f.temp("k")
        f(BinOp(r, "shl", a, 3, ty))
        keep(r)
    f(Branch("eq", b, 0, False, "done", "divide"))
    f.label("divide")
    for op in ("div", "mod"):
        r = f.temp(op)
        f(BinOp(r, op, a, b, ty))
        keep(r)
    for divisor in (3, -3) if ty.signed else (3, 1 << 31):
        for op in ("div", "mod"):
            r = f.temp(op)
            f(BinOp(r, op, a, divisor, ty))
            keep(r)
    f(Jump("done"))
    f.label("done")
    f(Return(XDP_PASS))
    f.label("short")
    f(Return(XDP_DROP))
    assert slot <= RESULTS
    return f


def expected(ty: Scalar, a: int, b: int, c: int) -> list[int]:
    out = [reference(op, a, b, ty) for op in PLAIN_OPS]
    out += [reference(op, a, c, ty) for op in SHIFT_OPS]
    out += [reference(op, a, 0, ty) for op in UNARY_OPS]
    for op in COMPARE_OPS:
        # The two views of the 64-bit registers.
        ua, ub = a % (1 << 64), b % (1 << 64)
        sa, sb = wrap(I64, a), wrap(I64, b)
        out += [compare_reference(op, ua, ub), compare_reference(op, sa, sb)]
    out += [wrap(to, a) for to in TYPES]
    for constant in (1, -7 if ty.signed else 7, ty.max, ty.min):
        out += [wrap(ty, a + constant), wrap(ty, a << 3)]
    if b:
        out += [reference("div", a, b, ty), reference("mod", a, b, ty)]
        for divisor in (3, -3) if ty.signed else (3, 1 << 31):
            out += [reference("div", a, divisor, ty), reference("mod", a, divisor, ty)]
    return [x % (1 << 64) for x in out]


@pytest.fixture(scope="module")
def arith():
    builders = {ty: arith_program(ty) for ty in TYPES}
    ir = module(*((b, "xdp", 0) for b in builders.values()))
    with loaded(ir) as (_, live):
        yield ir, live


def values(ty: Scalar) -> st.SearchStrategy[int]:
    edges = st.sampled_from([ty.min, ty.max, 0, 1, -1 if ty.signed else 2, ty.min + 1])
    return st.one_of(edges, st.integers(ty.min, ty.max))


@pytest.mark.parametrize("ty", TYPES, ids=str)
def test_arithmetic_matches_python(arith, ty: Scalar) -> None:
    ir, live = arith
    interp = Interpreter(ir)
    program = live.programs[f"arith_{ty}"]
    code = {8: "b", 16: "h", 32: "i", 64: "q"}[ty.bits]
    pack = "<" + (code if ty.signed else code.upper())

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(a=values(ty), b=values(ty), c=st.integers(0, 255))
    def check(a: int, b: int, c: int) -> None:
        packet = bytearray(PACKET)
        struct.pack_into(pack, packet, 0, a)
        struct.pack_into(pack, packet, 8, b)
        packet[16] = c
        kernel = program.test_run(bytes(packet))
        host = interp.run(program.name, bytes(packet))
        want = expected(ty, a, b, c)
        assert kernel.retval == host.retval == XDP_PASS
        got = list(u64s(kernel.data_out, 32, len(want)))
        assert got == want
        assert host.packet == kernel.data_out[:PACKET]

    check()
