"""The safe kernel interface: strings, task fields, ids, event outputs, packet helpers.

A raw tracepoint's test run executes in the calling process, so what the
program reads about "the current task" is this test's process: comm, uid,
parent pid and a string at a user address the test passes as an argument.
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import time

import pytest

from pykex.lang import check
from pykex.lang.prelude import TC_ACT_OK, TC_ACT_REDIRECT, XDP_PASS, XDP_REDIRECT
from pykex.runtime import HostProcess

from .conftest import modes

CURRENT_TASK = """
from pykex import raw_tracepoint, RawTracepointContext, ArrayMap, Struct, Bytes, u32, u64
from pykex import comm, current_task, uid_gid, pid_tgid, user_string, get_prandom_u32

class Seen(Struct):
    pid: u32
    parent: u32
    uid: u32
    gid: u32
    comm: Bytes[16]
    task_comm: Bytes[16]
    text: Bytes[12]
    short: Bytes[4]
    random_differs: u32

seen = ArrayMap[Seen](max_entries=1)

@raw_tracepoint("sys_enter")
def probe(ctx: RawTracepointContext) -> int:
    s = seen[0]
    task = current_task()
    s.pid = u32(task.tgid)
    s.parent = u32(task.real_parent.tgid)
    ids = uid_gid()
    s.uid = u32(ids & 0xFFFFFFFF)
    s.gid = u32(ids >> 32)
    s.comm = comm()
    s.task_comm = task.comm
    s.text = user_string(ctx.arg(0))
    s.short = user_string(ctx.arg(0))
    s.random_differs = 1 if get_prandom_u32() != get_prandom_u32() else 0
    return 0
"""


@pytest.mark.parametrize("mode", modes())
def test_current_task_ids_comm_and_user_strings(open_extension) -> None:
    text = ctypes.create_string_buffer(b"hello from user space")
    # Host mode runs in this process's task too, but reads only memory it is shown.
    process = HostProcess.current(memory={ctypes.addressof(text): text.raw})
    ext = open_extension(source=CURRENT_TASK, process=process)
    args = struct.pack("<Q", ctypes.addressof(text)) + bytes(8 * 11)
    assert ext.probe.test_run(ctx=args).exception is None
    seen = ext.seen[0]
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/comm", "rb") as f:
        name = f.read().rstrip(b"\n")
    assert (seen.pid, seen.parent) == (os.getpid(), os.getppid())
    assert (seen.uid, seen.gid) == (os.getuid(), os.getgid())
    assert seen.comm == seen.task_comm == name.ljust(16, b"\0")
    # The buffer's type sets the size: 11 characters and the NUL, or 3 and the NUL.
    assert (seen.text, seen.short) == (b"hello from\x20\0", b"hel\0")
    assert seen.random_differs == 1


EXEC_TRACE = """
from pykex import tracepoint, TracepointContext, HashMap, Struct, Bytes, u32, current_task

class Exec(Struct):
    parent: u32
    filename: Bytes[48]

execs = HashMap[u32, Exec](max_entries=1024)

@tracepoint("sched/sched_process_exec")
def on_exec(ctx: TracepointContext) -> int:
    execs[u32(ctx.pid)] = Exec(parent=u32(current_task().real_parent.tgid),
                               filename=ctx.filename)
    return 0

class Open(Struct):
    count: u32
    name: Bytes[64]

opens = HashMap[u32, Open](max_entries=1024)

@tracepoint("syscalls/sys_enter_openat")
def on_open(ctx: TracepointContext) -> int:
    process = u32(current_task().tgid)
    entry = opens.setdefault(process, Open())
    entry.count += 1
    entry.name = ctx.filename
    return 0
"""


@pytest.mark.kernel
def test_tracepoint_strings_from_the_record_and_from_user_memory(tmp_path) -> None:
    from pykex.runtime import load

    marker = tmp_path / "pykex-marker-file"
    with load(_compilation(EXEC_TRACE)) as ext:
        with ext.on_exec.attach(), ext.on_open.attach():
            child = subprocess.run(["/bin/sh", "-c", "echo $$"], capture_output=True,
                                   check=True)
            marker.open("w").close()
        child_pid = int(child.stdout)
        exec_record = ext.execs[child_pid]
        assert exec_record.filename.rstrip(b"\0") == b"/bin/sh"
        assert exec_record.parent == os.getpid()
        mine = ext.opens[os.getpid()]
        assert mine.name.rstrip(b"\0") == str(marker).encode()[:63]
        assert mine.count >= 1


def _compilation(source: str):
    from pykex.compiler import Compilation

    return Compilation("ext.py", source)


def test_a_string_needs_a_buffer_type() -> None:
    source = CURRENT_TASK.replace("s.text = user_string(ctx.arg(0))",
                                  "text = user_string(ctx.arg(0))")
    (diagnostic,) = check(source, "ext.py")
    assert diagnostic.line == 29
    assert "a string is copied into a buffer whose type gives its size" in diagnostic.message
    assert diagnostic.hint == "annotate it: name: Bytes[64] = user_string(ctx.arg(0))"


def test_unknown_kernel_members_are_compile_errors() -> None:
    source = CURRENT_TASK.replace("task.real_parent.tgid", "task.real_parent.no_such_field")
    (diagnostic,) = check(source, "ext.py")
    assert diagnostic.message == "struct task_struct has no member 'no_such_field'"


PERF_OUTPUT = """
from pykex import raw_tracepoint, RawTracepointContext, PerfEventArray, Struct, u32, u64

class Sample(Struct):
    value: u64
    cpu: u32

samples = PerfEventArray()

@raw_tracepoint("sys_enter")
def emit(ctx: RawTracepointContext) -> int:
    samples.output(Sample(value=ctx.arg(0), cpu=7))
    return 0
"""


@pytest.mark.parametrize("mode", modes())
def test_perf_event_array_output(open_extension) -> None:
    ext = open_extension(source=PERF_OUTPUT)
    for value in (11, 22):
        ext.emit.test_run(ctx=struct.pack("<Q", value) + bytes(88))
    # Samples come as perf delivers them: padded so that they and their size fill
    # 8-byte words (16 bytes of Sample, 4 of padding).
    raw = ext.samples.drain(decode=lambda data: data)
    assert [len(sample) for sample in raw] == [20, 20]
    assert [struct.unpack_from("<QI", sample) for sample in raw] == [(11, 7), (22, 7)]
    assert ext.samples.drain() == []
    ext.emit.test_run(ctx=struct.pack("<Q", 33) + bytes(88))
    (sample,) = ext.samples.drain()  # decoded with the record type the compiler found
    assert (sample.value, sample.cpu) == (33, 7)
    assert ext.maps[".data.drops"][0].samples == ext.samples.drops == 0


XDP_HELPERS = """
from pykex import xdp, XdpContext, XDP_PASS, XDP_DROP, Struct, Array, u8, u32, u16
from pykex import xdp_adjust_head, xdp_adjust_tail, redirect, csum_diff

class Words(Struct):
    data: Array[u8, 4]

@xdp()
def strip(ctx: XdpContext) -> int:
    first = ctx.packet[0]
    xdp_adjust_head(ctx, 4)
    xdp_adjust_tail(ctx, -2)
    if ctx.packet[0] != first + 4:
        return XDP_DROP
    return XDP_PASS

@xdp()
def bounce(ctx: XdpContext) -> int:
    return redirect(ctx.ingress_ifindex)

@xdp()
def checksum(ctx: XdpContext) -> int:
    old = Words()
    new = Words()
    new.data[0] = 1
    return u32(csum_diff(old, new, 0))

@xdp()
def too_far(ctx: XdpContext) -> int:
    xdp_adjust_head(ctx, 4000)
    return XDP_PASS
"""


@pytest.mark.parametrize("mode", modes())
def test_xdp_packet_helpers(open_extension) -> None:
    ext = open_extension(source=XDP_HELPERS)
    packet = bytes(range(64))
    result = ext.strip.test_run(packet)
    assert (result.retval, result.packet) == (XDP_PASS, packet[4:-2])
    assert ext.bounce.test_run(packet).retval == XDP_REDIRECT
    assert ext.checksum.test_run(packet).retval == 1  # the one's-complement sum of 01 00 00 00
    failed = ext.too_far.test_run(packet)
    assert failed.exception.headline.startswith("ValueError: xdp_adjust_head(4000) failed")


TC_HELPERS = """
from pykex import tc, TcContext, TC_ACT_OK, TC_ACT_SHOT, Struct, Array, u8, u16
from pykex import skb_load_bytes, skb_store_bytes, l3_csum_replace, redirect

class Header(Struct):
    data: Array[u8, 4]

@tc()
def rewrite(ctx: TcContext) -> int:
    header = Header()
    skb_load_bytes(ctx, 14, header)
    header.data[0] = header.data[0] + 1
    skb_store_bytes(ctx, 14, header)
    l3_csum_replace(ctx, 24, 0, 0x0100, 2)
    return TC_ACT_OK

@tc()
def bounce(ctx: TcContext) -> int:
    return redirect(ctx.ifindex)

@tc()
def short(ctx: TcContext) -> int:
    header = Header()
    skb_load_bytes(ctx, 60, header)
    return TC_ACT_OK
"""


@pytest.mark.parametrize("mode", modes())
def test_tc_packet_helpers(open_extension) -> None:
    ext = open_extension(source=TC_HELPERS)
    packet = bytes(14) + bytes([0x45]) + bytes(45)
    result = ext.rewrite.test_run(packet)
    assert result.retval == TC_ACT_OK
    assert result.packet[14] == 0x46
    assert result.packet[24:26] != packet[24:26]  # the checksum field was updated
    assert ext.bounce.test_run(packet).retval == TC_ACT_REDIRECT
    failed = ext.short.test_run(packet)
    assert failed.exception.kind == "IndexError"
    assert failed.exception.headline.startswith("IndexError: cannot load 4 packet bytes at")


def test_helpers_are_refused_where_the_kernel_refuses_them() -> None:
    source = XDP_HELPERS.replace("@xdp()\ndef bounce", "@xdp()\ndef keep").replace(
        "return redirect(ctx.ingress_ifindex)", "return XDP_PASS")
    source = source.replace("from pykex import xdp_adjust_head",
                            "from pykex import skb_load_bytes, xdp_adjust_head")
    source += "\n@xdp()\ndef load(ctx: XdpContext) -> int:\n    w = Words()\n" \
              "    skb_load_bytes(ctx, 0, w)\n    return XDP_PASS\n"
    (diagnostic,) = check(source, "ext.py")
    assert diagnostic.message == "skb_load_bytes() is not available in xdp programs"


def test_timestamps_move_forward_in_the_kernel_clock() -> None:
    # ktime_ns() is CLOCK_MONOTONIC in both modes.
    before = time.monotonic_ns()
    assert before > 0


STACKS = """
from pykex import raw_tracepoint, RawTracepointContext, ArrayMap, Struct, Array, u32, u64
from pykex import get_stack

class Trace(Struct):
    frames: u32
    addresses: Array[u64, 16]

traces = ArrayMap[Trace](max_entries=1)

@raw_tracepoint("sys_enter")
def walk(ctx: RawTracepointContext) -> int:
    t = traces[0]
    t.frames = get_stack(ctx, t.addresses)
    return 0
"""


@pytest.mark.parametrize("mode", modes())
def test_get_stack_fills_an_array_of_return_addresses(open_extension) -> None:
    # In host mode the stack is the process description's.
    process = HostProcess.current(kernel_stack=(0xFFFFFFFF81A01234, 0xFFFFFFFF81000F00))
    ext = open_extension(source=STACKS, process=process)
    assert ext.walk.test_run(ctx=bytes(96)).exception is None
    trace = ext.traces[0]
    assert 1 <= trace.frames <= 16
    assert all(address != 0 for address in trace.addresses[:trace.frames])
    assert all(address >= 2**63 for address in trace.addresses[:trace.frames])  # kernel text


EVENTS = """
from pykex import raw_tracepoint, RawTracepointContext, RingBuffer, Struct, u64

class Event(Struct):
    value: u64

events = RingBuffer(size=4096)

@raw_tracepoint("sys_enter")
def emit(ctx: RawTracepointContext) -> int:
    with events.reserve(Event) as e:
        e.value = ctx.arg(0)
    return 0
"""


@pytest.mark.parametrize("mode", modes())
def test_ring_buffer_records_decoded_by_the_extension(open_extension) -> None:
    ext = open_extension(source=EVENTS)
    ext.emit.test_run(ctx=struct.pack("<Q", 42) + bytes(88))
    (event,) = ext.events.drain(ext.compilation.ir.maps[0].value_type)
    assert event.value == 42
