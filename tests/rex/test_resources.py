"""Resources held by ``with`` blocks, released on every path; crash-stop; drops.

The issue's criterion: an exception raised while a spin lock is held and a
ring buffer record is reserved leaves neither held -- the next run takes the
lock again (the kernel would hang or refuse otherwise) and the ring holds
exactly the records of the runs that did not raise.
"""

from __future__ import annotations

import pytest

from pykex.compiler import Compilation
from pykex.lang.prelude import XDP_DROP, XDP_PASS

from .conftest import modes

LOCK_AND_RESERVATION = """
from pykex import xdp, XdpContext, XDP_PASS, XDP_DROP, ArrayMap, RingBuffer, Struct, SpinLock
from pykex import u32, u64

class Counter(Struct):
    lock: SpinLock
    count: u64
    last_length: u32

class Event(Struct):
    count: u64
    length: u32

counters = ArrayMap[Counter](max_entries=1)
events = RingBuffer(size=4096)

@xdp(on_error=XDP_DROP)
def bump(ctx: XdpContext) -> int:
    counter = counters[0]
    with events.reserve(Event) as event:
        with counter.lock:
            counter.count += 1
            counter.last_length = u32(len(ctx.packet))
            event.count = counter.count
            event.length = counter.last_length
            if ctx.packet[0] == 0xFF:
                raise ValueError("refused first byte", counter.count)
    return XDP_PASS
"""


def _records(ext, name: str) -> list[bytes]:
    """The records a ring buffer holds, drained, as bytes."""
    return ext.maps[name].drain(decode=bytes)


@pytest.mark.parametrize("mode", modes())
def test_raise_under_lock_and_reservation_releases_both(open_extension) -> None:
    ext = open_extension(source=LOCK_AND_RESERVATION)
    assert ext.bump.test_run(bytes(20)).retval == XDP_PASS
    failed = ext.bump.test_run(b"\xff" + bytes(19))
    assert failed.retval == XDP_DROP
    assert failed.exception.headline == "ValueError: refused first byte 2"
    raised_at = failed.exception.frames[-1].text
    assert raised_at == 'raise ValueError("refused first byte", counter.count)'
    # The lock was released: the next run takes it and counts on.
    assert ext.bump.test_run(bytes(30)).retval == XDP_PASS
    assert ext.counters[0].count == 3
    # The record reserved by the run that raised was discarded, not sent.
    records = [(int.from_bytes(r[:8], "little"), int.from_bytes(r[8:12], "little"))
               for r in _records(ext, "events")]
    assert records == [(1, 20), (3, 30)]


def test_every_exit_of_a_with_block_releases_in_reverse_order() -> None:
    compilation = Compilation("ext.py", LOCK_AND_RESERVATION)
    function = compilation.ir.programs[0].function
    unlock_then_discard = ["bpf_spin_unlock", "bpf_ringbuf_discard"]
    raising = [b for b in function.blocks if type(b.terminator).__name__ == "Raise"]
    calls = {b.label: [i.helper for i in b.instrs if type(i).__name__ == "Call"]
             for b in raising}
    # The map lookup raises before anything is held; every other site holds both.
    held = [c for c in calls.values() if c]
    assert held and all(c == unlock_then_discard for c in held), calls
    assert sum(1 for c in calls.values() if not c) == 1


RETURN_INSIDE = """
from pykex import xdp, XdpContext, XDP_PASS, XDP_DROP, ArrayMap, RingBuffer, Struct, SpinLock
from pykex import u64

class Counter(Struct):
    lock: SpinLock
    count: u64

class Event(Struct):
    count: u64

counters = ArrayMap[Counter](max_entries=1)
events = RingBuffer(size=4096)

def bump_unless_big(counter: Counter, length: u64) -> u64:
    with counter.lock:
        if length > 100:
            return 0
        counter.count += 1
    return 1

@xdp()
def prog(ctx: XdpContext) -> int:
    counter = counters[0]
    for i in range(4):
        with events.reserve(Event) as event:
            event.count = u64(i)
            if i == 1:
                continue
            if i == 2:
                break
    if bump_unless_big(counter, u64(len(ctx.packet))) == 0:
        return XDP_DROP
    with counter.lock:
        if counter.count > 2:
            return XDP_DROP
    return XDP_PASS
"""


@pytest.mark.parametrize("mode", modes())
def test_return_break_and_continue_release_first(open_extension) -> None:
    ext = open_extension(source=RETURN_INSIDE)
    assert ext.prog.test_run(bytes(200)).retval == XDP_DROP  # returned under the lock
    assert [ext.prog.test_run(bytes(20)).retval for _ in range(3)] == [
        XDP_PASS, XDP_PASS, XDP_DROP]
    assert ext.counters[0].count == 3
    # i == 0 submitted, i == 1 submitted on continue, i == 2 submitted on break; per run.
    counts = [int.from_bytes(r[:8], "little") for r in _records(ext, "events")]
    assert counts == [0, 1, 2] * 4


RESERVE_ONLY = """
from pykex import xdp, XdpContext, XDP_PASS, RingBuffer, Struct, u64, u32

class Big(Struct):
    sequence: u64
    padding: Array[u64, 62]

events = RingBuffer(size=4096)
runs: u64 = 0

@xdp()
def prog(ctx: XdpContext) -> int:
    with events.reserve(Big) as record:
        record.sequence = u64(len(ctx.packet))
        if ctx.packet[0] == 1:
            assert False, "refused"
    events.output(u32(7))
    return XDP_PASS
""".replace("u64, u32", "u64, u32, Array")


@pytest.mark.parametrize("mode", modes())
def test_a_full_ring_counts_drops_and_the_block_is_skipped(open_extension) -> None:
    ext = open_extension(source=RESERVE_ONLY)
    # Each reserved record takes 8 + 504 bytes, each output 8 + 8: the 4 KiB ring
    # holds 7 of the first kind and 8 of the second once the reservations left room.
    for _ in range(12):
        assert ext.prog.test_run(bytes(20)).exception is None
    drops = ext.maps[".data.drops"][0]
    received = _records(ext, "events")
    big = [r for r in received if len(r) == 504]  # Big.size
    small = [r for r in received if len(r) == 4]
    assert len(big) + drops.events >= 12  # every attempt is either received or counted
    assert len(big) + len(small) + drops.events == 24
    assert drops.events > 0
    # A record whose block raised is discarded, and it does not count as a drop.
    before = ext.maps[".data.drops"][0].events
    assert ext.prog.test_run(b"\x01" + bytes(19)).exception.kind == "AssertionError"
    assert _records(ext, "events") == []
    assert ext.maps[".data.drops"][0].events == before


CRASH_STOP = """
from pykex import xdp, XdpContext, XDP_PASS, XDP_DROP, ArrayMap, u64

seen = ArrayMap[u64](max_entries=1)

@xdp(on_error=XDP_DROP, crash_stop=True)
def guard(ctx: XdpContext) -> int:
    seen[0] += 1
    if ctx.packet[0] == 0xEE:
        raise RuntimeError("poisoned packet")
    return XDP_PASS
"""


@pytest.mark.parametrize("mode", modes())
def test_crash_stop_disables_the_program_until_reenabled(open_extension) -> None:
    ext = open_extension(source=CRASH_STOP)
    assert ext.guard.test_run(bytes(20)).retval == XDP_PASS
    assert ext.guard.test_run(b"\xee" + bytes(19)).retval == XDP_DROP
    # Disabled: returns on_error at once, without running (seen stays at 2).
    for _ in range(3):
        result = ext.guard.test_run(bytes(20))
        assert (result.retval, result.exception) == (XDP_DROP, None)
    assert ext.seen[0] == 2
    assert ext.exceptions()["guard"] == 1
    flags = ext.maps[".data.disabled"]
    assert flags[0].guard == 1
    flags[0] = type(flags[0])(guard=0)  # what ext.guard.reenable() should do
    assert ext.guard.test_run(bytes(20)).retval == XDP_PASS
    assert ext.seen[0] == 3


@pytest.mark.parametrize("mode", modes())
def test_reenable_method(open_extension) -> None:
    ext = open_extension(source=CRASH_STOP)
    ext.guard.test_run(b"\xee" + bytes(19))
    assert ext.guard.test_run(bytes(20)).retval == XDP_DROP
    ext.guard.reenable()
    assert ext.maps[".data.disabled"][0].guard == 0
    assert ext.guard.test_run(bytes(20)).retval == XDP_PASS


BIG_FRAME = """
from pykex import xdp, XdpContext, XDP_PASS, Struct, Array, u64

class Table(Struct):
    values: Array[u64, 512]

@xdp()
def big(ctx: XdpContext) -> int:
    table = Table()
    for i in range(512):
        table.values[i] = u64(i) * u64(len(ctx.packet))
    total: u64 = 0
    for i in range(512):
        total += table.values[i]
    return XDP_PASS if total == u64(len(ctx.packet)) * 130816 else 0
"""


@pytest.mark.parametrize("mode", modes())
def test_four_kib_of_locals_live_in_the_frame_map(open_extension) -> None:
    stats = Compilation("ext.py", BIG_FRAME).stats[0]
    assert stats.frame_bytes >= 4096 > 512 > stats.stack_bytes
    ext = open_extension(source=BIG_FRAME)
    assert ext.big.test_run(bytes(60)).retval == XDP_PASS


def test_stats_report_the_frame_of_each_program() -> None:
    table = Compilation("ext.py", BIG_FRAME).output("stats")
    header, row = table.splitlines()
    assert "frame bytes" in header
    assert int(row.split()[-1]) >= 4096
