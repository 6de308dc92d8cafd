"""Scalar globals updated atomically, event maps and the record type they carry,
and mistakes reported once."""

from __future__ import annotations

import pytest

from pykex import layout
from pykex.compiler import Compilation
from pykex.ir.interp import Interpreter
from pykex.lang import check, compile_to_ir
from pykex.runtime import load, load_host

MODES = [
    pytest.param(load, id="kernel", marks=pytest.mark.kernel),
    pytest.param(load_host, id="host"),
]

COUNTER = """
from pykex import xdp, XdpContext, XDP_PASS, atomic_add, u32, u64

packets: u64 = 0
bytes_seen: u32 = 7

@xdp(on_error=XDP_PASS)
def count(ctx: XdpContext) -> int:
    atomic_add(packets, 1)
    atomic_add(bytes_seen, len(ctx.packet))
    return XDP_PASS
"""


@pytest.mark.parametrize("mode", MODES)
def test_atomic_add_on_scalar_globals(mode) -> None:
    with mode(Compilation("ext.py", COUNTER)) as ext:
        for size in (14, 20, 60):
            assert ext.count.test_run(bytes(size)).retval == 2
        packets = layout.u64.decode(ext.variable("packets"))
        seen = layout.u32.decode(ext.variable("bytes_seen"))
    assert (packets, seen) == (3, 7 + 14 + 20 + 60)


@pytest.mark.parametrize(("target", "message"), [
    ("flags", "atomic_add needs a 32- or 64-bit host-order field, not u8"),
    ("state", "atomic_add needs a 32- or 64-bit host-order field, not State"),
])
def test_atomic_add_needs_a_wide_integer_global(target: str, message: str) -> None:
    source = f"""
from pykex import xdp, XdpContext, Struct, atomic_add, u8, u64

class State(Struct):
    n: u64

flags: u8 = 0
state: State = State()

@xdp()
def prog(ctx: XdpContext) -> int:
    atomic_add({target}, 1)
    return 0
"""
    (diagnostic,) = check(source, "ext.py")
    assert diagnostic.message == message


EVENTS = """
from pykex import xdp, XdpContext, XDP_PASS, RingBuffer, PerfEventArray, Struct, u32, u64

class Event(Struct):
    length: u32
    first: u32

class Other(Struct):
    stamp: u64

events = RingBuffer(size=4096)
mixed = RingBuffer(size=4096)
numbers = RingBuffer(size=4096)
perf = PerfEventArray()

@xdp(on_error=XDP_PASS)
def send(ctx: XdpContext) -> int:
    events.output(Event(length=len(ctx.packet), first=u32(ctx.packet[0])))
    assert len(ctx.packet) > 20, "short packet"
    with events.reserve(Event) as e:
        e.length = 1
    mixed.output(Event())
    mixed.output(Other())
    numbers.output(u32(1))
    perf.output(Other(stamp=1))
    return XDP_PASS
"""


class Event(layout.Struct):
    """The record of ring ``events``, as user space decodes it."""

    length: layout.u32
    first: layout.u32


def test_event_maps_name_their_record_type_when_it_is_one_struct() -> None:
    module = compile_to_ir(EVENTS, "ext.py")
    records = {m.name: m.record_type for m in module.maps if m.kind in ("RINGBUF",
                                                                        "PERF_EVENT_ARRAY")}
    assert records["events"] is not None and records["events"].fields == Event.fields
    assert records["perf"] is not None and records["perf"].__name__ == "Other"
    assert records["mixed"] is None and records["numbers"] is None


@pytest.mark.parametrize("mode", MODES)
def test_an_assert_after_an_output(mode) -> None:
    with mode(Compilation("ext.py", EVENTS.replace("    perf.output(Other(stamp=1))\n", "")
                          .replace("perf = PerfEventArray()\n", ""))) as ext:
        passed = ext.send.test_run(bytes(40))
        failed = ext.send.test_run(bytes(16))
    assert (passed.retval, passed.exception) == (2, None)
    assert failed.exception is not None and "short packet" in str(failed.exception)


def test_a_bad_helper_signature_is_reported_once() -> None:
    source = """
from pykex import xdp, XdpContext, u32

def helper(x) -> u32:
    return 1

@xdp()
def prog(ctx: XdpContext) -> int:
    a = helper(1)
    b = helper(2) + a
    return b
"""
    assert [d.headline for d in check(source, "ext.py")] == [
        "ext.py:4:11: error: parameter 'x' needs a type annotation"]


def test_an_unknown_import_does_not_hide_the_other_names() -> None:
    source = """
from pykex import xdp, XdpContext, u32, user_strng

@xdp()
def prog(ctx: XdpContext) -> int:
    x = user_strng(u32(1))
    return u32(ctx.ingress_ifindex)
"""
    (diagnostic,) = check(source, "ext.py")
    assert diagnostic.headline == "ext.py:2:0: error: pykex has no name 'user_strng'"
    assert diagnostic.hint == "did you mean 'user_string'?"


def test_an_assert_after_an_output_in_the_interpreter() -> None:
    module = compile_to_ir(EVENTS.replace("    perf.output(Other(stamp=1))\n", "")
                           .replace("perf = PerfEventArray()\n", ""), "ext.py")
    machine = Interpreter(module, cpus=1)
    assert machine.run("send", bytes(40)).exception is None
    failed = machine.run("send", bytes(16)).exception
    assert failed is not None and failed.format() == "AssertionError: short packet"
    sent = machine.maps["events"].records
    assert [Event.decode(r).length for r in sent] == [40, 1, 16]  # the raise drops the rest

