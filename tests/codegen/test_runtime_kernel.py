"""Control flow, exceptions, packets, maps, spills: kernel == interpreter."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykex.bpf.codegen import EXC_COUNT_MAP, ErrorRecord, frame_layout
from pykex.ir.interp import Interpreter
from pykex.ir.nodes import (
    U8,
    U32,
    U64,
    Assign,
    AtomicAdd,
    BinOp,
    Branch,
    Call,
    Compare,
    FrameAddr,
    GlobalAddr,
    Jump,
    Load,
    LoopBack,
    MapDecl,
    MapRef,
    MemCopy,
    MemZero,
    PacketLen,
    PacketPtr,
    Raise,
    Return,
    Store,
    UnOp,
)
from pykex.kernel import syscall
from pykex.kernel.ringbuf import RingBuffer

from .harness import XDP_ABORTED, XDP_DROP, XDP_PASS, FunctionBuilder, loaded, module

pytestmark = pytest.mark.kernel


def drain_errors(live) -> list[ErrorRecord]:
    with RingBuffer(live.maps[".errors"]) as ring:
        return [ErrorRecord.unpack(r) for r in ring.drain()]


def per_cpu_sum(live, name: str, key: int) -> int:
    return sum(live.maps[name][key])


def infinite_loop() -> FunctionBuilder:
    f = FunctionBuilder("spin", frame_size=8)
    i, slot = f.temp("i"), f.temp("slot", pointer=True)
    f(FrameAddr(slot, 0), Store(slot, 0, 0, U64), Jump("loop"))
    f.label("loop")
    f(Load(i, slot, 0, U64), BinOp(i, "add", i, 1, U64), Store(slot, 0, i, U64))
    f(LoopBack("loop", "exhausted"))
    f.label("exhausted")
    f(Raise("TerminationError", "loop budget exhausted after {} iterations", [i]))
    return f


def test_infinite_loop_loads_and_is_stopped() -> None:
    ir = module((infinite_loop(), "xdp", XDP_ABORTED))
    with loaded(ir) as (compiled, live):
        result = live.programs["spin"].test_run(bytes(64))
        assert result.retval == XDP_ABORTED
        records = drain_errors(live)
        assert len(records) == 1
        site = compiled.sites[records[0].site_id]
        assert site.kind == "TerminationError" and site.program == "spin"
        assert records[0].program_index == 0
        assert records[0].args[0] > 1000  # it did loop
        assert site.locs[0].line == 8  # the Raise's own line
        assert per_cpu_sum(live, EXC_COUNT_MAP, records[0].site_id) == 1
    host = Interpreter(ir, loop_budget=500).run("spin", bytes(64))
    assert host.retval == XDP_ABORTED
    assert host.exception is not None and host.exception.kind == "TerminationError"
    assert host.exception.args == (501,)


def counting_loop() -> FunctionBuilder:
    """Sum of 0..n-1 for n read from the packet (a loop that ends)."""
    f = FunctionBuilder("count", frame_size=16)
    p, fr = f.temp("p", pointer=True), f.temp("fr", pointer=True)
    n, i, total = f.temp("n"), f.temp("i"), f.temp("total")
    f(PacketPtr(p, 0, 8, "short"), Load(n, p, 0, U8), FrameAddr(fr, 0))
    f(Store(fr, 0, 0, U64), Store(fr, 8, 0, U64), Jump("head"))
    f.label("head")
    f(Load(i, fr, 0, U64), Branch("lt", i, n, False, "body", "out"))
    f.label("body")
    f(Load(total, fr, 8, U64), BinOp(total, "add", total, i, U64), Store(fr, 8, total, U64))
    f(BinOp(i, "add", i, 1, U64), Store(fr, 0, i, U64), LoopBack("head", "exhausted"))
    f.label("exhausted")
    f(Raise("TerminationError", "loop budget exhausted", []))
    f.label("out")
    f(Load(total, fr, 8, U64), Store(p, 0, total, U32), Return(XDP_PASS))
    f.label("short")
    f(Return(XDP_DROP))
    return f


def test_bounded_loop_matches_interpreter() -> None:
    ir = module((counting_loop(), "xdp", XDP_ABORTED))
    interp = Interpreter(ir)
    with loaded(ir) as (_, live):
        for n in (0, 1, 2, 17, 255):
            packet = bytes([n]) + bytes(63)
            kernel = live.programs["count"].test_run(packet)
            host = interp.run("count", packet)
            assert kernel.retval == host.retval == XDP_PASS
            assert struct.unpack_from("<I", kernel.data_out)[0] == n * (n - 1) // 2
            assert kernel.data_out[:64] == host.packet


def packet_reader() -> FunctionBuilder:
    """Read a u32 at an offset taken from the packet; IndexError when out of range."""
    f = FunctionBuilder("reader")
    head, p = f.temp("head", pointer=True), f.temp("p", pointer=True)
    off, value, length = f.temp("off"), f.temp("value"), f.temp("len")
    f(PacketPtr(head, 0, 2, "short"), Load(off, head, 0, U8, big_endian=False))
    f(PacketPtr(p, off, 4, "oob"), Load(value, p, 0, U32, big_endian=True))
    f(Store(head, 0, value, U8), Return(XDP_PASS))
    f.label("oob")
    f(PacketLen(length))
    f(Raise("IndexError", "packet read at {} of {} bytes exceeds length {}", [off, 4, length]))
    f.label("short")
    f(Return(XDP_DROP))
    return f


@pytest.fixture(scope="module")
def reader():
    ir = module((packet_reader(), "xdp", XDP_ABORTED))
    with loaded(ir) as (compiled, live):
        yield ir, compiled, live


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(0, 255), payload=st.binary(min_size=14, max_size=120))
def test_packet_bounds(reader, offset: int, payload: bytes) -> None:
    ir, compiled, live = reader
    packet = bytes([offset]) + payload[1:]
    kernel = live.programs["reader"].test_run(packet)
    host = Interpreter(ir).run("reader", packet)
    records = drain_errors(live)
    fits = offset + 4 <= len(packet)
    assert kernel.retval == host.retval == (XDP_PASS if fits else XDP_ABORTED)
    if fits:
        assert kernel.data_out[0] == packet[offset + 3]
        assert records == []
        assert host.packet == kernel.data_out[: len(packet)]
    else:
        assert [r.args[:3] for r in records] == [(offset, 4, len(packet))]
        assert host.exception is not None and host.exception.args == (offset, 4, len(packet))
        site = compiled.sites[records[0].site_id]
        assert site.format(records[0].args) == host.exception.format()


def map_program() -> tuple[FunctionBuilder, MapDecl]:
    """counts[key] += 1 for the u32 key at packet[0]; returns the old count or 0."""
    counts = MapDecl("counts", "HASH", 4, 8, 64)
    f = FunctionBuilder("mapper", frame_size=16)
    p, fr, m = f.temp("p", pointer=True), f.temp("fr", pointer=True), f.temp("m")
    key, v, old, new, status = (f.temp(h) for h in ("key", "v", "old", "new", "status"))
    f(PacketPtr(p, 0, 4, "short"), Load(key, p, 0, U32), FrameAddr(fr, 0))
    f(Store(fr, 0, key, U32), MapRef(m, "counts"))
    f(Call(v, "bpf_map_lookup_elem", [m, fr]), Branch("eq", v, 0, False, "missing", "found"))
    f.label("found")
    f(Load(old, v, 0, U64), BinOp(new, "add", old, 1, U64), Store(v, 0, new, U64))
    f(Return(old))
    f.label("missing")
    one = f.temp("one", pointer=True)
    f(FrameAddr(one, 8), Store(one, 0, 1, U64))
    f(Call(status, "bpf_map_update_elem", [m, fr, one, 0]))
    f(Return(status))
    f.label("short")
    f(Return(XDP_DROP))
    return f, counts


def test_map_lookup_and_update() -> None:
    f, counts = map_program()
    ir = module((f, "xdp", XDP_ABORTED), maps=[counts])
    interp = Interpreter(ir)
    with loaded(ir) as (_, live):
        for key in (5, 5, 5, 9, 5, 9):
            packet = struct.pack("<I", key) + bytes(60)
            kernel = live.programs["mapper"].test_run(packet)
            host = interp.run("mapper", packet)
            assert kernel.retval == host.retval
        raw = syscall.map_lookup(live.map_fd("counts"), struct.pack("<I", 5), 8)
        assert raw is not None and struct.unpack("<Q", raw)[0] == 4
        assert bytes(interp.maps["counts"].lookup(struct.pack("<I", 5), 0)) == raw


def pressure_program(width: int) -> FunctionBuilder:
    """``width`` values live at once, some across helper calls: forces spills."""
    f = FunctionBuilder(f"pressure{width}")
    p = f.temp("p", pointer=True)
    f(PacketPtr(p, 0, 8 * width + 8, "short"))
    values = []
    for index in range(width):
        v = f.temp(f"v{index}")
        f(Load(v, p, 8 * index, U64))
        values.append(v)
    now = f.temp("now")
    f(Call(now, "bpf_get_smp_processor_id", []))
    acc = f.temp("acc")
    f(Assign(acc, 0))
    for index, v in enumerate(values):
        mixed = f.temp("m")
        f(BinOp(mixed, "mul", v, index + 3, U64), BinOp(acc, "xor", acc, mixed, U64))
        if index % 4 == 0:
            flag = f.temp("flag")
            f(Compare(flag, "lt", v, acc, False), BinOp(acc, "add", acc, flag, U64))
    f(Store(p, 8 * width, acc, U64), Return(XDP_PASS))
    f.label("short")
    f(Return(XDP_DROP))
    return f


@settings(max_examples=20, deadline=None)
@given(words=st.lists(st.integers(0, (1 << 64) - 1), min_size=14, max_size=14))
def test_register_pressure_spills(words: list[int]) -> None:
    ir = module((pressure_program(14), "xdp", XDP_ABORTED))
    packet = struct.pack("<14Q", *words) + bytes(8)
    with loaded(ir) as (compiled, live):
        # It did spill: scalars go to the start of the frame.
        assert compiled.programs[0].frame_size > frame_layout(0)[1]
        kernel = live.programs["pressure14"].test_run(packet)
    host = Interpreter(ir).run("pressure14", packet)
    assert kernel.retval == host.retval == XDP_PASS
    assert kernel.data_out[: len(packet)] == host.packet


def memory_program(kind: str) -> tuple[FunctionBuilder, MapDecl]:
    """Globals, atomics, copies, zeroing and big-endian stores in one program."""
    data = MapDecl("glob", "ARRAY", 4, 24, 1, initial=struct.pack("<QQQ", 5, 1 << 40, 0))
    f = FunctionBuilder(f"mem_{kind}", frame_size=40)
    p, g, fr = f.temp("p", True), f.temp("g", True), f.temp("fr", True)
    x, y, flag, inv = f.temp("x"), f.temp("y"), f.temp("flag"), f.temp("inv")
    f(PacketPtr(p, 0, 40, "short"), GlobalAddr(g, "glob", 8), FrameAddr(fr, 0))
    f(Load(x, p, 0, U32), AtomicAdd(g, -8, x, U64), AtomicAdd(g, 8, x, U32))
    f(MemCopy(fr, 3, p, 1, 13), MemZero(fr, 5, 3), MemCopy(p, 20, fr, 3, 13))
    f(Load(y, g, 0, U64), Store(p, 4, y, U64, big_endian=True))
    f(Compare(flag, "eq", x, 0, False), UnOp(inv, "not", flag, U8))
    f(Store(p, 12, inv, U8), Return(XDP_PASS))
    f.label("short")
    f(Return(XDP_DROP))
    return f, data


@pytest.mark.parametrize("kind", ["xdp", "tc"])
def test_memory_instructions(kind: str) -> None:
    f, data = memory_program(kind)
    ir = module((f, kind, 0), maps=[data])
    interp = Interpreter(ir)
    packet = bytes(range(7, 7 + 60))
    with loaded(ir) as (_, live):
        program = live.programs[f"mem_{kind}"]
        for _ in range(2):  # globals keep their values between runs
            kernel = program.test_run(packet)
            host = interp.run(program.name, packet)
            assert kernel.retval == host.retval == XDP_PASS
            assert kernel.data_out[:60] == host.packet
        raw = syscall.map_lookup(live.map_fd("glob"), struct.pack("<I", 0), 24)
    x = struct.unpack_from("<I", packet)[0]
    assert raw == struct.pack("<QQI4x", 5 + 2 * x, (1 << 40), 2 * x)
    assert raw == bytes(interp.maps["glob"].lookup(struct.pack("<I", 0), 0))
    assert host.packet[4:12] == struct.pack(">Q", 1 << 40)
    assert host.packet[12] == 1  # not (x == 0)
