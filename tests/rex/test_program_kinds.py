"""Program kinds beyond xdp/tc/tracepoints: socket filters, cgroup skb, perf
events with stack ids, uprobes and kprobes (which this kernel cannot attach)."""

from __future__ import annotations

import ctypes
import os
import struct
import time

import pytest

from pykex.compiler import Compilation
from pykex.kernel import features
from pykex.kernel import link as links
from pykex.lang import check
from pykex.lang.contexts import probe_argument, probe_result, pt_regs_size
from pykex.lang.prelude import SK_DROP, SK_PASS
from pykex.runtime import HostProcess

from .conftest import modes

# Test runs of skb programs hand them the packet from the network header on.
UDP_PACKET = bytes(12) + b"\x08\x00" + bytes([0x45]) + bytes(8) + bytes([17]) + bytes(30)
TCP_PACKET = UDP_PACKET[:23] + bytes([6]) + UDP_PACKET[24:]

SKB_PROGRAMS = """
from pykex import socket_filter, cgroup_skb, SkbContext, ArrayMap, SK_PASS, SK_DROP, u64

counts = ArrayMap[u64](max_entries=2)

@socket_filter()
def udp_only(ctx: SkbContext) -> int:
    if ctx.packet[9] == 17:
        return len(ctx.packet)
    return 0

@cgroup_skb(direction="egress")
def no_tcp(ctx: SkbContext) -> int:
    counts[0] += u64(ctx.len)
    if ctx.packet[9] == 6:
        return SK_DROP
    return SK_PASS
"""


@pytest.mark.parametrize("mode", modes())
def test_socket_filter_reads_the_packet_through_load_bytes(open_extension) -> None:
    ext = open_extension(source=SKB_PROGRAMS)
    assert ext.udp_only.test_run(UDP_PACKET).retval == len(UDP_PACKET) - 14
    assert ext.udp_only.test_run(TCP_PACKET).retval == 0
    short = ext.udp_only.test_run(bytes(16))  # two bytes past the Ethernet header
    assert short.exception.headline == "IndexError: packet offset 9 + 1 > length 2"


@pytest.mark.parametrize("mode", modes())
def test_cgroup_skb_verdicts(open_extension) -> None:
    ext = open_extension(source=SKB_PROGRAMS)
    assert ext.no_tcp.test_run(UDP_PACKET).retval == SK_PASS
    assert ext.no_tcp.test_run(TCP_PACKET).retval == SK_DROP


def test_skb_programs_cannot_write_the_packet() -> None:
    source = SKB_PROGRAMS.replace("return len(ctx.packet)", "ctx.packet[0] = 1\n        return 0")
    (diagnostic,) = check(source, "ext.py")
    assert diagnostic.message == "socket_filter programs can only read the packet"


PROBES = """
from pykex import uprobe, uretprobe, kprobe, kretprobe, ProbeContext, HashMap, ArrayMap, u64

arguments = HashMap[u64, u64](max_entries=16)
calls = ArrayMap[u64](max_entries=2)

@uprobe("/lib/x86_64-linux-gnu/libc.so.6", "labs")
def on_labs(ctx: ProbeContext) -> int:
    arguments[ctx.arg(0)] = 1
    return 0

@uretprobe("/lib/x86_64-linux-gnu/libc.so.6", "labs")
def after_labs(ctx: ProbeContext) -> int:
    arguments[ctx.ret()] = 2
    return 0

@kprobe("do_sys_openat2")
def on_open(ctx: ProbeContext) -> int:
    calls[0] += 1
    return 0

@kretprobe("do_sys_openat2")
def after_open(ctx: ProbeContext) -> int:
    calls[1] = ctx.ret()
    return 0
"""
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


@pytest.mark.parametrize("mode", modes())
def test_uprobe_arguments_and_uretprobe_results(open_extension, mode: str) -> None:
    ext = open_extension(source=PROBES)
    value = -12345
    if mode == "kernel":
        libc = ctypes.CDLL(LIBC)
        with links.attach_uprobe(ext.on_labs.program, LIBC, "labs"), links.attach_uprobe(
                ext.after_labs.program, LIBC, "labs", retprobe=True):
            assert libc.labs(ctypes.c_long(value)) == -value
    else:  # the registers as the probes would see them
        regs = bytearray(256)
        struct.pack_into("<q", regs, probe_argument(0), value)
        ext.on_labs.test_run(ctx=bytes(regs))
        struct.pack_into("<q", regs, probe_result(), -value)
        ext.after_labs.test_run(ctx=bytes(regs))
    assert dict(ext.arguments.items()) == {value & (2**64 - 1): 1, -value: 2}


@pytest.mark.kernel
def test_kprobes_load_and_attach_where_the_kernel_has_them() -> None:
    from pykex.runtime import load

    with load(Compilation("ext.py", PROBES)) as ext:
        assert ext.on_open.kind == ext.after_open.kind == "kprobe"
        if not features.probe("tracing.kprobe").available:
            pytest.skip("this kernel has no kprobes (CONFIG_KPROBES is off); they load only")
        with links.attach_kprobe(ext.on_open.program, "do_sys_openat2"):
            open("/dev/null").close()
        assert ext.calls[0] >= 1


@pytest.mark.kernel
def test_attach_dispatches_uprobes_and_return_probes() -> None:
    from pykex.runtime import load

    with load(Compilation("ext.py", PROBES)) as ext:
        with ext.on_labs.attach(), ext.after_labs.attach():
            ctypes.CDLL(LIBC).labs(ctypes.c_long(-5))
        assert dict(ext.arguments.items()) == {2**64 - 5: 1, 5: 2}


def test_ret_is_for_return_probes_only() -> None:
    source = PROBES.replace("arguments[ctx.arg(0)] = 1", "arguments[ctx.ret()] = 1")
    (diagnostic,) = check(source, "ext.py")
    assert diagnostic.hint == "use @kretprobe or @uretprobe"


SAMPLING = """
from pykex import perf_event, PerfEventContext, StackTrace, HashMap, i64, u64

stacks = StackTrace(max_entries=1024)
counts = HashMap[i64, u64](max_entries=1024)
periods = HashMap[u64, u64](max_entries=16)

@perf_event()
def sample(ctx: PerfEventContext) -> int:
    stack = ctx.get_stackid(stacks)
    seen = counts.setdefault(stack, 0)
    counts[stack] = seen + 1
    periods[ctx.sample_period] = 1
    return 0
"""


@pytest.mark.parametrize("mode", modes())
def test_perf_event_samples_with_stack_ids(open_extension, mode: str) -> None:
    # Host mode samples this process on made-up stacks (the kernel cannot test-run
    # perf event programs, so there the program samples the real CPU).
    process = HostProcess.current(kernel_stack=(0xFFFFFFFF81A01234, 0xFFFFFFFF81000F00))
    ext = open_extension(source=SAMPLING, process=process)
    if mode == "kernel":
        with ext.sample.attach(frequency=999):
            # Half the time in the kernel: a sample taken in user mode has no
            # kernel stack, and get_stackid() then returns an error.
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                os.stat("/")
    else:
        sample = bytes(pt_regs_size()) + struct.pack("<QQ", 1_001_001, 0)
        for _ in range(60):
            assert ext.sample.test_run(ctx=sample).exception is None
    total = sum(ext.counts.values())
    assert total >= 50  # about 300 samples on this CPU alone
    good = [stack for stack in ext.counts if stack >= 0]
    assert good and all(ext.stacks[stack][0] != 0 for stack in good[:5])
    assert len(ext.periods) >= 1


def test_get_stackid_is_for_tracing_programs() -> None:
    source = """
from pykex import xdp, XdpContext, StackTrace
stacks = StackTrace(max_entries=8)

@xdp()
def prog(ctx: XdpContext) -> int:
    return ctx.get_stackid(stacks)
"""
    (diagnostic,) = check(source, "ext.py")
    assert diagnostic.message == "get_stackid() is not available in xdp programs"
