"""Ring buffer consumer against the real kernel: ordering, drops, wrap-around, discard."""

from __future__ import annotations

import itertools
import struct
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from pykex.bpf import (
    FP,
    R0,
    R1,
    R2,
    R3,
    R4,
    R7,
    Instruction,
    add64,
    and64,
    atomic_add,
    atomic_fetch_add,
    call_helper,
    encode,
    exit,
    ja,
    jeq,
    jne,
    ld_imm64,
    ld_map_fd,
    mov64,
    st,
    stx,
    xor64,
)
from pykex.kernel import FD, Program, ProgType, syscall
from pykex.kernel.cpus import possible_cpu_count
from pykex.kernel.fd import open_fds
from pykex.kernel.ringbuf import DropCounter, RingBuffer, RingBufferReader
from pykex.kernel.uapi import MapType
from pykex.layout import Struct, u64

pytestmark = pytest.mark.kernel

XDP_PASS = 2
PACKET = bytes(64)
EVENTS = 100_000
# Any value XORed into the second word of a record, so a torn or misplaced
# copy shows up as a mismatch.
PATTERN = 0x5A17_C0DE_0BAD_F00D


def ring(size: int, name: str = "events") -> FD:
    return syscall.map_create(MapType.RINGBUF, 0, 0, size, name=name)


def u64_array(name: str, map_type: MapType = MapType.ARRAY) -> FD:
    return syscall.map_create(map_type, 4, 8, 1, name=name)


def read_u64(array: FD) -> int:
    value = syscall.map_lookup(int(array), struct.pack("<I", 0), 8)
    assert value is not None
    return struct.unpack("<Q", value)[0]


def next_sequence(counter: FD) -> list[Instruction]:
    """r7 = counter[0]++ (atomic fetch-add); leaves fp-4 = key 0."""
    return [
        st(4, FP, -4, 0),
        mov64(R2, FP),
        add64(R2, -4),
        ld_map_fd(R1, int(counter)),
        call_helper("bpf_map_lookup_elem"),
        jeq(R0, 0, "out"),
        mov64(R7, 1),
        atomic_fetch_add(8, R0, 0, R7),
    ]


def count_drop(drops: FD) -> list[Instruction]:
    """drops[0] += 1, the pykex drop convention (fp-4 still holds key 0)."""
    return [
        mov64(R2, FP).with_label("drop"),
        add64(R2, -4),
        ld_map_fd(R1, int(drops)),
        call_helper("bpf_map_lookup_elem"),
        jeq(R0, 0, "out"),
        mov64(R1, 1),
        atomic_add(8, R0, 0, R1),
        ja("out"),
    ]


def epilogue() -> list[Instruction]:
    return [mov64(R0, XDP_PASS).with_label("out"), exit()]


def reserve_program(events: FD, counter: FD, drops: FD) -> Program:
    """Each run reserves an 8-byte record holding the next sequence number and
    submits it, or counts a drop when the ring is full."""
    body = [
        *next_sequence(counter),
        ld_map_fd(R1, int(events)),
        mov64(R2, 8),
        mov64(R3, 0),
        call_helper("bpf_ringbuf_reserve"),
        jeq(R0, 0, "drop"),
        stx(8, R0, 0, R7),
        mov64(R1, R0),
        mov64(R2, 0),
        call_helper("bpf_ringbuf_submit"),
        ja("out"),
        *count_drop(drops),
        *epilogue(),
    ]
    return Program.load(ProgType.XDP, encode(body).code, name="rb_reserve")


def output_program(events: FD, counter: FD, drops: FD, size: int) -> Program:
    """Each run copies ``size`` bytes of (seq, seq ^ PATTERN) from the stack
    with bpf_ringbuf_output, or counts a drop."""
    body = [
        *next_sequence(counter),
        stx(8, FP, -24, R7),
        mov64(R1, R7),
        ld_imm64(R2, PATTERN),
        xor64(R1, R2),
        stx(8, FP, -16, R1),
        ld_map_fd(R1, int(events)),
        mov64(R2, FP),
        add64(R2, -24),
        mov64(R3, size),
        mov64(R4, 0),
        call_helper("bpf_ringbuf_output"),
        jne(R0, 0, "drop"),
        ja("out"),
        *count_drop(drops),
        *epilogue(),
    ]
    return Program.load(ProgType.XDP, encode(body).code, name="rb_output")


def discard_odd_program(events: FD, counter: FD) -> Program:
    """Reserves a record per run, submits even sequence numbers, discards odd ones."""
    body = [
        *next_sequence(counter),
        ld_map_fd(R1, int(events)),
        mov64(R2, 8),
        mov64(R3, 0),
        call_helper("bpf_ringbuf_reserve"),
        jeq(R0, 0, "out"),
        stx(8, R0, 0, R7),
        mov64(R1, R0),
        mov64(R2, 0),
        and64(R7, 1),
        jeq(R7, 0, "submit"),
        call_helper("bpf_ringbuf_discard"),
        ja("out"),
        call_helper("bpf_ringbuf_submit").with_label("submit"),
        *epilogue(),
    ]
    return Program.load(ProgType.XDP, encode(body).code, name="rb_discard")


@pytest.fixture
def maps() -> Iterator[tuple[FD, FD]]:
    counter = u64_array("seq")
    drops = u64_array("drops", MapType.PERCPU_ARRAY)
    yield counter, drops
    counter.close()
    drops.close()


def sequence(record: bytes) -> int:
    return struct.unpack("<Q", record)[0]


def burst_with_concurrent_consumer(ring_size: int, maps: tuple[FD, FD]) -> tuple[list, int]:
    counter, drops = maps
    with ring(ring_size) as events, reserve_program(events, counter, drops) as prog, \
            RingBuffer(events, decode=sequence, drops=drops) as rb:
        received: list[int] = []
        done = threading.Event()

        def consume() -> None:
            while not done.is_set():
                rb.poll(received.append, timeout=0.05)

        consumer = threading.Thread(target=consume)
        consumer.start()
        try:
            assert prog.test_run(PACKET, repeat=EVENTS).retval == XDP_PASS
        finally:
            done.set()
            consumer.join()
        received.extend(rb.drain())
        assert rb.received == len(received)
        assert read_u64(counter) == EVENTS
        return received, rb.dropped


def assert_in_order(sequences: list[int]) -> None:
    assert all(a < b for a, b in itertools.pairwise(sequences)), \
        "sequence numbers must strictly increase"
    assert all(0 <= seq < EVENTS for seq in sequences)


def test_burst_into_small_ring_every_event_arrives_in_order_or_is_counted(maps) -> None:
    received, dropped = burst_with_concurrent_consumer(64 * 1024, maps)
    assert_in_order(received)
    assert len(received) + dropped == EVENTS
    # The producer may run at most size - 1 bytes ahead of the consumer, so
    # 64 KiB holds 4095 records of 16 bytes: a burst of 100,000 overflows it,
    # and at least a full ring's worth arrives even if the consumer stalls.
    assert dropped > 0
    assert len(received) >= 64 * 1024 // 16 - 1


def test_burst_into_big_ring_loses_nothing(maps) -> None:
    received, dropped = burst_with_concurrent_consumer(4 * 1024 * 1024, maps)
    assert dropped == 0
    assert received == list(range(EVENTS))


def test_records_wrap_around_the_ring_intact(maps) -> None:
    counter, drops = maps
    size = 13  # 8 + 13 rounds up to 24-byte records: they straddle the end of a 4 KiB ring
    with ring(4096) as events, output_program(events, counter, drops, size) as prog, \
            RingBuffer(events) as rb:
        records: list[bytes] = []
        for _ in range(20):
            prog.test_run(PACKET, repeat=150)  # 150 * 24 bytes fit in the ring
            records.extend(rb.records(timeout=0))
        assert rb.dropped == 0
    assert len(records) == 3000
    for expected, record in enumerate(records):
        assert len(record) == size
        seq, mixed = struct.unpack("<QQ", record + bytes(16 - size))
        assert seq == expected
        assert mixed & 0xFF_FFFF_FFFF == (expected ^ PATTERN) & 0xFF_FFFF_FFFF


def test_discarded_records_are_skipped(maps) -> None:
    counter, _ = maps
    with ring(4096) as events, discard_odd_program(events, counter) as prog, \
            RingBuffer(events, decode=sequence) as rb:
        prog.test_run(PACKET, repeat=100)
        assert rb.drain() == list(range(0, 100, 2))
        assert rb.received == 50
        assert rb.pending_bytes == 0


def test_poll_times_out_empty_and_callback_sees_records(maps) -> None:
    counter, drops = maps
    with ring(4096) as events, reserve_program(events, counter, drops) as prog, \
            RingBuffer(events, decode=sequence) as rb:
        seen: list[int] = []
        assert rb.poll(seen.append, timeout=0.01) == 0
        prog.test_run(PACKET, repeat=5)
        assert rb.poll(seen.append, timeout=1.0) == 5
        assert seen == [0, 1, 2, 3, 4]
        assert list(rb.records(timeout=0.01)) == []


def test_records_iterator_wakes_up_for_records_produced_later(maps) -> None:
    counter, drops = maps
    with ring(4096) as events, reserve_program(events, counter, drops) as prog, \
            RingBuffer(events, decode=sequence) as rb:
        producer = threading.Timer(0.1, prog.test_run, (PACKET,), {"repeat": 3})
        producer.start()
        try:
            assert list(itertools.islice(rb.records(timeout=2.0), 3)) == [0, 1, 2]
        finally:
            producer.join()


def test_reader_serves_several_rings_with_their_callbacks(maps) -> None:
    counter, drops = maps
    with ring(4096, "errors") as errors, ring(4096, "events") as events, \
            reserve_program(errors, counter, drops) as to_errors, \
            reserve_program(events, counter, drops) as to_events, \
            RingBufferReader() as reader:
        from_errors: list[int] = []
        from_events: list[int] = []
        reader.add(errors, from_errors.append, decode=sequence)
        reader.add(events, from_events.append, decode=sequence, drops=drops)
        assert reader.poll(timeout=0.01) == 0
        to_errors.test_run(PACKET, repeat=2)
        to_events.test_run(PACKET, repeat=3)
        assert reader.poll(timeout=1.0) == 5
        assert from_errors == [0, 1]
        assert from_events == [2, 3, 4]
        assert [rb.name for rb in reader.rings] == ["errors", "events"]
        assert [rb.received for rb in reader.rings] == [2, 3]


def test_consumer_owns_its_descriptor_and_closes_everything() -> None:
    before = set(open_fds())
    events = ring(4096)
    rb = RingBuffer(events)
    events.close()  # the consumer keeps its own reference
    assert rb.drain() == []
    assert len(set(open_fds()) - before) == 1
    rb.close()
    rb.close()
    assert set(open_fds()) - before == set()


def test_any_object_with_an_fd_is_accepted_as_the_map(maps) -> None:
    counter, drops = maps
    with ring(4096) as events, reserve_program(events, counter, drops) as prog, \
            RingBuffer(SimpleNamespace(fd=events), drops=SimpleNamespace(fd=drops)) as rb:
        prog.test_run(PACKET)
        assert [sequence(record) for record in rb.drain()] == [0]
        assert rb.dropped == 0


def test_wrong_map_types_are_refused_with_a_clear_message(maps) -> None:
    counter, _ = maps
    with pytest.raises(ValueError, match="expected a RINGBUF map, got a ARRAY map"):
        RingBuffer(counter)
    with ring(4096) as events:
        with pytest.raises(ValueError, match="drop counter must be an ARRAY or PERCPU_ARRAY"):
            RingBuffer(events, drops=events)
        with pytest.raises(TypeError, match=r"object with \.fd"):
            RingBuffer("events")  # type: ignore[arg-type]


def test_drop_counter_sums_per_cpu_slots(maps) -> None:
    counter_array, drops = maps
    slots = [7 * (cpu + 1) for cpu in range(possible_cpu_count())]
    syscall.map_update(int(drops), struct.pack("<I", 0), struct.pack(f"<{len(slots)}Q", *slots))
    syscall.map_update(int(counter_array), struct.pack("<I", 0), struct.pack("<Q", 41))
    per_cpu, shared = DropCounter(drops), DropCounter(counter_array)
    try:
        assert per_cpu.read() == sum(slots)
        assert shared.read() == 41
    finally:
        per_cpu.close()
        shared.close()


class Event(Struct):
    seq: u64


class Wide(Struct):
    seq: u64
    extra: u64


def test_layout_types_decode_records_of_their_size(maps) -> None:
    counter, drops = maps
    with ring(4096) as events, reserve_program(events, counter, drops) as prog, \
            RingBuffer(events, decode=Event) as as_event, RingBuffer(events, decode=u64) as as_int:
        prog.test_run(PACKET, repeat=2)
        assert as_event.drain() == [Event(seq=0), Event(seq=1)]
        prog.test_run(PACKET, repeat=1)
        assert as_int.drain() == [2]


def test_a_record_of_the_wrong_size_is_reported(maps) -> None:
    counter, drops = maps
    with ring(4096) as events, reserve_program(events, counter, drops) as prog, \
            RingBuffer(events, decode=Wide) as rb:
        prog.test_run(PACKET)
        with pytest.raises(ValueError, match="a record of 8 bytes cannot be a Wide \\(16 bytes\\)"):
            rb.drain()
        assert rb.drain() == []  # the bad record was consumed, not replayed
