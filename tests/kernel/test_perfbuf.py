"""Perf event array consumer against the real kernel: delivery, losses, wrap-around."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import pytest

from pykex.bpf import (
    FP,
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    add64,
    atomic_fetch_add,
    call_helper,
    encode,
    exit,
    jeq,
    ld_imm64,
    ld_map_fd,
    mov64,
    st,
    stx,
    xor64,
)
from pykex.kernel import FD, Program, ProgType, syscall
from pykex.kernel.cpus import online_cpus, possible_cpu_count
from pykex.kernel.fd import open_fds
from pykex.kernel.perfbuf import PerfBuffer
from pykex.kernel.uapi import MapType
from pykex.layout import Struct, u64

pytestmark = pytest.mark.kernel

XDP_PASS = 2
PACKET = bytes(64)
PATTERN = 0x5A17_C0DE_0BAD_F00D
BPF_F_CURRENT_CPU = 0xFFFFFFFF
# 24 bytes of data: 28 with the u32 size, padded to 32; records are 40 bytes,
# which do not divide a page, so records straddle the end of the data area.
SAMPLE_SIZE = 24
RECORD_SIZE = 40


def output_program(events: FD, counter: FD) -> Program:
    """Each run emits (seq, seq ^ PATTERN, PATTERN) with bpf_perf_event_output."""
    body = [
        mov64(R6, R1),  # the XDP context, which the helper needs
        st(4, FP, -4, 0),
        mov64(R2, FP),
        add64(R2, -4),
        ld_map_fd(R1, int(counter)),
        call_helper("bpf_map_lookup_elem"),
        jeq(R0, 0, "out"),
        mov64(R7, 1),
        atomic_fetch_add(8, R0, 0, R7),
        ld_imm64(R2, PATTERN),
        stx(8, FP, -32, R7),
        stx(8, FP, -16, R2),
        xor64(R2, R7),
        stx(8, FP, -24, R2),
        mov64(R1, R6),
        ld_map_fd(R2, int(events)),
        # Upper 32 bits zero: copy no packet bytes, only the stack data.
        ld_imm64(R3, BPF_F_CURRENT_CPU),
        mov64(R4, FP),
        add64(R4, -32),
        mov64(R5, SAMPLE_SIZE),
        call_helper("bpf_perf_event_output"),
        mov64(R0, XDP_PASS).with_label("out"),
        exit(),
    ]
    return Program.load(ProgType.XDP, encode(body).code, name="perf_output")


def sample(record: bytes) -> int:
    """The sequence number of a well-formed sample (payload checked, padding allowed)."""
    assert len(record) == SAMPLE_SIZE + 4  # perf pads raw data to 8-byte alignment
    seq, mixed, pattern = struct.unpack_from("<QQQ", record)
    assert mixed == seq ^ PATTERN and pattern == PATTERN, record.hex()
    return seq


@pytest.fixture
def setup() -> Iterator[tuple[FD, Program]]:
    """The map and the emitting program, with this thread pinned to one CPU so
    that every sample of a test lands in the same per-CPU buffer."""
    events = syscall.map_create(MapType.PERF_EVENT_ARRAY, 4, 4, possible_cpu_count(), name="events")
    counter = syscall.map_create(MapType.ARRAY, 4, 8, 1, name="seq")
    prog = output_program(events, counter)
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {online_cpus()[0]})
    try:
        yield events, prog
    finally:
        os.sched_setaffinity(0, allowed)
        prog.close()
        counter.close()
        events.close()


def test_every_emitted_sample_arrives_in_order(setup) -> None:
    events, prog = setup
    with PerfBuffer(events, pages=16, decode=sample) as buffer:
        assert buffer.cpus == online_cpus()
        prog.test_run(PACKET, repeat=1000)
        received = list(buffer.records(timeout=0.05))
        assert received == list(range(1000))
        assert (buffer.received, buffer.lost) == (1000, 0)


def test_overflow_is_counted_as_lost(setup) -> None:
    events, prog = setup
    losses: list[tuple[int, int]] = []
    with PerfBuffer(events, pages=1, decode=sample, on_lost=lambda *loss: losses.append(loss)) \
            as buffer:
        prog.test_run(PACKET, repeat=1000)
        first = buffer.drain()
        # One page holds 4096 // 40 samples; the rest of the burst was lost.
        assert len(first) == 4096 // RECORD_SIZE
        assert first == list(range(len(first)))
        # The kernel reports the loss with the next sample that fits.
        prog.test_run(PACKET)
        second = buffer.drain()
        assert second == [1000]
        assert buffer.lost == 1000 - len(first)
        assert buffer.received + buffer.lost == 1001
        assert sum(count for _, count in losses) == buffer.lost
        assert {cpu for cpu, _ in losses} <= set(online_cpus())


def test_samples_wrap_around_the_data_area_intact(setup) -> None:
    events, prog = setup
    with PerfBuffer(events, pages=1, decode=sample) as buffer:
        received: list[int] = []
        for _ in range(25):
            prog.test_run(PACKET, repeat=90)  # 90 * 40 bytes fit in one page
            assert buffer.poll(received.append, timeout=1.0) == 90
        assert received == list(range(25 * 90))
        assert buffer.lost == 0


class Sample(Struct):
    seq: u64
    mixed: u64
    pattern: u64


def test_layout_types_decode_samples_despite_the_padding(setup) -> None:
    events, prog = setup
    with PerfBuffer(events, pages=1, decode=Sample) as buffer:
        prog.test_run(PACKET, repeat=2)
        assert buffer.drain() == [Sample(seq, seq ^ PATTERN, PATTERN) for seq in range(2)]


def test_poll_times_out_when_nothing_is_emitted(setup) -> None:
    events, _ = setup
    with PerfBuffer(events, pages=1) as buffer:
        assert buffer.poll([].append, timeout=0.01) == 0
        assert buffer.drain() == []


def test_close_removes_events_from_the_map_and_closes_descriptors(setup) -> None:
    events, prog = setup
    before = set(open_fds())
    buffer = PerfBuffer(events, pages=1)
    key = struct.pack("<I", online_cpus()[0])
    assert len(set(open_fds()) - before) == 1 + len(online_cpus())  # the map, an event per CPU
    buffer.close()
    buffer.close()
    assert set(open_fds()) - before == set()
    # With no event stored for the CPU, the helper fails and nothing is written.
    assert syscall.map_delete(int(events), key) is False
    assert prog.test_run(PACKET).retval == XDP_PASS


def test_bad_arguments_are_refused_with_clear_messages(setup) -> None:
    events, _ = setup
    with pytest.raises(ValueError, match="power of two, not 3"):
        PerfBuffer(events, pages=3)
    with syscall.map_create(MapType.ARRAY, 4, 8, 1) as array, \
            pytest.raises(ValueError, match="expected a PERF_EVENT_ARRAY map, got a ARRAY"):
        PerfBuffer(array)
    with syscall.map_create(MapType.PERF_EVENT_ARRAY, 4, 4, 1) as small, \
            pytest.raises(ValueError, match="max_entries"):
        PerfBuffer(small, cpus=[0, 1])
