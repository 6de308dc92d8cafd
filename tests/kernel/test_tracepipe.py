"""trace_pipe reader: parsing (no kernel needed) and bpf_trace_printk read back."""

from __future__ import annotations

import os
import struct
import threading

import pytest

from pykex.bpf import (
    FP,
    R0,
    R1,
    R2,
    R3,
    Instruction,
    add64,
    call_helper,
    encode,
    exit,
    ld_imm64,
    mov64,
    stx,
)
from pykex.kernel import Program, ProgType
from pykex.kernel.tracepipe import (
    TraceFilter,
    TraceLine,
    TracePipe,
    parse_trace_lines,
    unique_marker,
)

SAMPLE = (
    "          python-10100   [000] b..11   682.100106: bpf_trace_printk: hello 42\n"
    "\n"
    " kworker/u4:1-events-77  (   77) [001] d.h2.  12.5: bpf_trace_printk: two\n"
    "lines\n"
    "           <...>-9 [1] 3.25: sched_switch: prev=a next=b\n"
)


def test_parse_fields_of_each_format() -> None:
    first, second, third = parse_trace_lines(SAMPLE)
    assert first == TraceLine("python", 10100, 0, 682.100106, "hello 42", flags="b..11")
    assert (second.task, second.pid, second.cpu, second.flags) == (
        "kworker/u4:1-events", 77, 1, "d.h2."
    )
    assert second.message == "two\nlines"
    assert (third.task, third.pid, third.cpu, third.timestamp) == ("<...>", 9, 1, 3.25)
    assert (third.event, third.flags, third.message) == ("sched_switch", "", "prev=a next=b")


def test_parse_drops_a_torn_start() -> None:
    assert parse_trace_lines("tail of something\n") == []


def test_filter_by_marker_and_pid() -> None:
    line = TraceLine("t", 5, 0, 1.0, "pykex-abc value 3")
    assert TraceFilter("pykex-abc")(line)
    assert not TraceFilter("pykex-xyz")(line)
    assert TraceFilter(pid=5)(line)
    assert not TraceFilter("pykex-abc", pid=6)(line)
    assert unique_marker() != unique_marker()


def printk_program(marker: str) -> Program:
    """An XDP program that prints "<marker> 42" with bpf_trace_printk."""
    text = f"{marker} %d\n".encode() + b"\0"
    text += bytes(-len(text) % 8)
    body: list[Instruction] = []
    for at in range(0, len(text), 8):
        body += [ld_imm64(R1, struct.unpack_from("<Q", text, at)[0]),
                 stx(8, FP, at - len(text), R1)]
    body += [
        mov64(R1, FP),
        add64(R1, -len(text)),
        mov64(R2, len(text)),
        mov64(R3, 42),
        call_helper("bpf_trace_printk"),
        mov64(R0, 2),
        exit(),
    ]
    return Program.load(ProgType.XDP, encode(body).code, name="printk")


@pytest.mark.kernel
def test_printk_lines_of_this_test_are_read_back() -> None:
    mine, other = unique_marker(), unique_marker()
    with TracePipe() as pipe, printk_program(mine) as prog, printk_program(other) as noise:
        assert pipe.tracing_on
        noise.test_run(bytes(64))
        prog.test_run(bytes(64), repeat=3)
        lines = pipe.wait_for(mine, pid=threading.get_native_id(), count=3)
        assert [line.message for line in lines] == [f"{mine} 42"] * 3
        assert all(line.event == "bpf_trace_printk" for line in lines)
        with open("/proc/thread-self/comm") as comm:
            task = comm.read().strip()
        # "<...>" when the kernel's pid-to-comm cache has lost this pid.
        assert all(line.task in (task, "<...>") for line in lines)
        assert all(0 <= line.cpu < os.cpu_count() for line in lines)
        timestamps = [line.timestamp for line in lines]
        assert timestamps == sorted(timestamps)
        assert pipe.skipped >= 1  # the other marker's line
        assert list(pipe.lines(timeout=0.05, marker=mine)) == []


@pytest.mark.kernel
def test_wait_for_times_out_with_a_count_of_what_arrived() -> None:
    with TracePipe() as pipe, pytest.raises(TimeoutError, match="0 of 1 trace lines"):
        pipe.wait_for(unique_marker(), timeout=0.05)
