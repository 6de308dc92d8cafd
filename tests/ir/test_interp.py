"""The interpreter: semantics, maps, helpers, exceptions (no kernel needed)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykex.ir.interp import HostMap, Interpreter, InterpreterError, binop, compare
from pykex.ir.nodes import (
    I8,
    I64,
    U32,
    U64,
    Block,
    Call,
    FrameAddr,
    Function,
    Load,
    Loc,
    MapDecl,
    MapRef,
    ModuleIR,
    PacketPtr,
    ProgramIR,
    Raise,
    Return,
    Store,
)


def program(instrs, *more_blocks, maps=(), frame_size=16) -> ModuleIR:
    f = Function("p", frame_size=frame_size)
    f.blocks = [Block("entry", list(instrs)), *more_blocks]
    return ModuleIR("m.py", "", maps=list(maps),
                    programs=[ProgramIR("p", "xdp", f, on_error=9)])


@given(st.integers(-128, 127), st.integers(-128, 127).filter(bool))
def test_signed_division_floors_and_wraps(a: int, b: int) -> None:
    q = binop("div", a, b, I8)
    assert q == ((a // b + 128) % 256) - 128
    assert binop("mod", a, b, I8) == a % b


def test_edge_semantics() -> None:
    assert binop("div", -(2**63), -1, I64) == -(2**63)
    assert binop("shl", 1, 64, U64) == 0
    assert binop("shr", -5, 200, I8) == -1
    assert compare("lt", -1, 0, signed=False) is False  # 2**64 - 1 unsigned


def test_map_helpers_and_ringbuf() -> None:
    counts = MapDecl("counts", "HASH", 4, 8, 2)
    ring = MapDecl("events", "RINGBUF", 0, 0, 4096)
    f = Function("p", frame_size=16)
    t = f.new_temp
    m, fr, val, st1, st2, r, out = t(), t(pointer=True), t(pointer=True), t(), t(), t(), t()
    key = t(pointer=True)
    f.blocks = [Block("entry", [
        FrameAddr(fr, 0), FrameAddr(key, 0), Store(key, 0, 7, U32), FrameAddr(val, 8),
        Store(val, 0, 99, U64), MapRef(m, "counts"),
        Call(st1, "bpf_map_update_elem", [m, key, val, 1]),
        Call(st2, "bpf_map_update_elem", [m, key, val, 1]),  # BPF_NOEXIST: -EEXIST
        MapRef(r, "events"), Call(out, "bpf_ringbuf_output", [r, val, 8, 0]),
        Return(st2),
    ])]  # fmt: skip
    ir = ModuleIR("m.py", "", maps=[counts, ring], programs=[ProgramIR("p", "xdp", f, 9)])
    interp = Interpreter(ir)
    result = interp.run("p")
    assert result.retval == (-17) & 0xFFFFFFFF  # -EEXIST as the kernel's u32 retval
    assert bytes(interp.maps["counts"].lookup(struct.pack("<I", 7), 0)) == struct.pack("<Q", 99)
    assert interp.maps["events"].records == [struct.pack("<Q", 99)]


def test_per_cpu_arrays_are_zero_filled_per_cpu() -> None:
    host = HostMap(MapDecl("a", "PERCPU_ARRAY", 4, 8, 2), cpus=3)
    assert host.update(struct.pack("<I", 1), b"\1" * 8, 0, cpu=2) == 0
    assert bytes(host.lookup(struct.pack("<I", 1), 0)) == bytes(8)
    assert bytes(host.lookup(struct.pack("<I", 1), 2)) == b"\1" * 8
    assert host.update(struct.pack("<I", 5), bytes(8), 0, cpu=0) < 0  # out of range


def test_raise_reports_kind_message_args_and_call_chain() -> None:
    outer = Loc("m.py", 20, 4, "main")
    inner = Loc("m.py", 5, 8, "helper", caller=outer)
    p = Function("p").new_temp(pointer=True)
    ir = program([PacketPtr(p, 10, 4, "oob"), Return(1)],
                 Block("oob", [Raise("IndexError", "index {} out of range", [10], loc=inner)]))
    result = Interpreter(ir).run("p", bytes(12))
    assert result.retval == 9
    assert result.exception is not None
    assert result.exception.format() == "IndexError: index 10 out of range"
    assert [loc.line for loc in result.exception.locs] == [5, 20]


def test_frames_persist_across_runs_like_per_cpu_maps() -> None:
    f = Function("p", frame_size=8)
    fr, v, w = f.new_temp(pointer=True), f.new_temp(), f.new_temp()
    from pykex.ir.nodes import BinOp

    f.blocks = [Block("entry", [
        FrameAddr(fr, 0), Load(v, fr, 0, U64), BinOp(w, "add", v, 1, U64),
        Store(fr, 0, w, U64), Return(w),
    ])]  # fmt: skip
    interp = Interpreter(ModuleIR("m.py", "", programs=[ProgramIR("p", "xdp", f, 0)]))
    assert [interp.run("p").retval for _ in range(3)] == [1, 2, 3]


def test_out_of_bounds_access_is_an_interpreter_error() -> None:
    f = Function("p", frame_size=8)
    fr, v = f.new_temp(pointer=True), f.new_temp()
    f.blocks = [Block("entry", [FrameAddr(fr, 4), Load(v, fr, 0, U64), Return(v)])]
    interp = Interpreter(ModuleIR("m.py", "", programs=[ProgramIR("p", "xdp", f, 0)]))
    with pytest.raises(InterpreterError, match="out of bounds"):
        interp.run("p")
