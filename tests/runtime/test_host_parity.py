"""Host mode against the kernel, value for value, where the emulation models the
kernel's own code: the skb context of a test run, checksum arithmetic, XDP's
frame limits, probe reads, ring buffer accounting and device maps.

Each test loads one extension in both modes, drives both the same way and
compares everything the runs leave behind (verdicts, packets, contexts, maps,
exception reports).
"""

from __future__ import annotations

import ctypes
import os
import random
import struct
import textwrap
from collections.abc import Iterator

import pytest

from pykex.compiler import Compilation
from pykex.kernel import syscall
from pykex.runtime import Extension, HostExtension, HostProcess, load, load_host

pytestmark = pytest.mark.kernel


@pytest.fixture
def both() -> Iterator:
    """``both(source, process=None)`` -> (kernel extension, host extension)."""
    opened: list[Extension | HostExtension] = []
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})  # host mode runs on CPU 0 too

    def open_(source: str, process: HostProcess | None = None
              ) -> tuple[Extension, HostExtension]:
        compilation = Compilation("ext.py", textwrap.dedent(source))
        kernel, host = load(compilation), load_host(compilation, process=process)
        opened.extend((kernel, host))
        return kernel, host

    try:
        yield open_
    finally:
        for ext in opened:
            ext.close()
        os.sched_setaffinity(0, affinity)


def outcome(result) -> tuple:
    report = result.exception
    return (result.retval, result.packet, result.ctx, report and str(report))


SKB_FIELDS = """
from pykex import tc, socket_filter, cgroup_skb, TcContext, SkbContext, ArrayMap, Struct
from pykex import u32, TC_ACT_OK, SK_PASS

class Fields(Struct):
    len: u32
    pkt_type: u32
    mark: u32
    queue_mapping: u32
    protocol: u32
    vlan_present: u32
    vlan_tci: u32
    vlan_proto: u32
    priority: u32
    ingress_ifindex: u32
    ifindex: u32
    hash: u32
    first: u32

seen = ArrayMap[Fields](max_entries=3)

def record(f: Fields, ctx: SkbContext) -> None:
    f.len = ctx.len
    f.pkt_type = ctx.pkt_type
    f.mark = ctx.mark
    f.queue_mapping = ctx.queue_mapping
    f.protocol = ctx.protocol
    f.vlan_present = ctx.vlan_present
    f.vlan_tci = ctx.vlan_tci
    f.vlan_proto = ctx.vlan_proto
    f.priority = ctx.priority
    f.ingress_ifindex = ctx.ingress_ifindex
    f.ifindex = ctx.ifindex
    f.hash = ctx.hash
    f.first = u32(ctx.packet[0])

@socket_filter()
def filter_fields(ctx: SkbContext) -> int:
    record(seen[0], ctx)
    return len(ctx.packet)

@cgroup_skb(direction="ingress")
def cgroup_fields(ctx: SkbContext) -> int:
    record(seen[1], ctx)
    return SK_PASS

@tc()
def tc_fields(ctx: TcContext) -> int:
    f = seen[2]
    f.len = ctx.len
    f.pkt_type = ctx.pkt_type
    f.protocol = ctx.protocol
    f.priority = ctx.priority
    f.ifindex = ctx.ifindex
    f.first = u32(ctx.packet[0])
    ctx.mark = ctx.mark + 1
    return TC_ACT_OK
"""

FRAMES = {
    "to the loopback address": bytes(6) + bytes(range(1, 7)) + b"\x08\x00" + bytes(range(40)),
    "broadcast": b"\xff" * 6 + bytes(6) + b"\x86\xdd" + bytes(range(50, 90)),
    "multicast": b"\x01\x00\x5e\x00\x00\x01" + bytes(6) + b"\x08\x06" + bytes(30),
    "to another host": b"\x02" + bytes(5) + bytes(6) + b"\x08\x00" + bytes(range(9, 49)),
    "802.3 with a 0xffff sap": bytes(12) + b"\x00\x40" + b"\xff\xff" + bytes(40),
    "802.2": bytes(12) + b"\x00\x40" + b"\xaa\xaa" + bytes(40),
}


@pytest.mark.parametrize("frame", FRAMES.values(), ids=FRAMES.keys())
def test_skb_contexts_and_packets_match_the_kernel(both, frame: bytes) -> None:
    kernel, host = both(SKB_FIELDS)
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 8, 5)  # mark
    struct.pack_into("<I", ctx, 32, 3)  # priority
    for name in ("filter_fields", "cgroup_fields", "tc_fields"):
        for given in (None, bytes(ctx)):
            expected = kernel.programs[name].test_run(frame, ctx=given)
            got = host.programs[name].test_run(frame, ctx=given)
            assert outcome(got) == outcome(expected), (name, given is not None)
            assert host.seen.values() == kernel.seen.values(), (name, given is not None)


CHECKSUMS = """
from pykex import tc, TcContext, TC_ACT_OK, ArrayMap, Struct, Array, u8, u16, u32, u64
from pykex import skb_load_bytes, csum_diff, l3_csum_replace, l4_csum_replace

class Words(Struct):
    data: Array[u8, 12]

class Pair(Struct):
    data: Array[u8, 8]

sums = ArrayMap[u64](max_entries=2)

@tc()
def diff(ctx: TcContext) -> int:
    old = Words()
    new = Pair()
    skb_load_bytes(ctx, 14, old)
    skb_load_bytes(ctx, 26, new)
    sums[0] = u64(csum_diff(old, new, ctx.packet.read(34, u32)))
    sums[1] = u64(csum_diff(new, old, 0))
    return TC_ACT_OK

@tc()
def replace2(ctx: TcContext) -> int:
    l3_csum_replace(ctx, 24, u64(ctx.packet.read(40, u16)), u64(ctx.packet.read(42, u16)), 2)
    l4_csum_replace(ctx, 26, u64(ctx.packet.read(40, u16)), u64(ctx.packet.read(42, u16)), 2)
    return TC_ACT_OK

@tc()
def replace4(ctx: TcContext) -> int:
    l3_csum_replace(ctx, 24, u64(ctx.packet.read(44, u32)), u64(ctx.packet.read(48, u32)), 4)
    l4_csum_replace(ctx, 28, u64(ctx.packet.read(44, u32)), u64(ctx.packet.read(48, u32)), 4)
    return TC_ACT_OK
"""


def test_checksum_helpers_match_the_kernel(both) -> None:
    kernel, host = both(CHECKSUMS)
    rng = random.Random(7)
    frames = [bytes(60), b"\xff" * 60]
    frames += [bytes(rng.getrandbits(8) for _ in range(60)) for _ in range(40)]
    for frame in frames:
        for name in ("diff", "replace2", "replace4"):
            expected = kernel.programs[name].test_run(frame)
            assert outcome(host.programs[name].test_run(frame)) == outcome(expected), frame
        assert host.sums.values() == kernel.sums.values(), frame.hex()


ADJUST = """
from pykex import xdp, XdpContext, XDP_PASS, XDP_ABORTED, i32, i64
from pykex import xdp_adjust_head, xdp_adjust_tail

@xdp()
def head(ctx: XdpContext) -> int:
    xdp_adjust_head(ctx, i64(ctx.packet.read(0, i32)))
    return XDP_PASS

@xdp()
def tail(ctx: XdpContext) -> int:
    xdp_adjust_tail(ctx, i64(ctx.packet.read(0, i32)))
    return XDP_PASS

@xdp()
def there_and_back(ctx: XdpContext) -> int:
    delta = i64(ctx.packet.read(0, i32))
    xdp_adjust_head(ctx, delta)
    xdp_adjust_head(ctx, -delta - 8)
    xdp_adjust_tail(ctx, 16)
    return XDP_PASS
"""


def test_xdp_frame_limits_match_the_kernel(both) -> None:
    kernel, host = both(ADJUST)
    for length in (14, 64, 1500):
        for delta in (-300, -217, -216, -100, -1, 0, 4, length - 14, length - 13, 3000, 3456,
                      3457, -(length - 14), -(length - 13)):
            frame = struct.pack("<i", delta).ljust(length, b"\x5a")
            for name in ("head", "tail", "there_and_back"):
                expected = kernel.programs[name].test_run(frame)
                got = host.programs[name].test_run(frame)
                assert outcome(got) == outcome(expected), (name, length, delta)


PROBE_READS = """
from pykex import raw_tracepoint, RawTracepointContext, ArrayMap, Struct, Bytes, u64
from pykex import user_string, kernel_string, current_task

class Strings(Struct):
    whole: Bytes[32]
    cut: Bytes[8]
    exact: Bytes[6]
    nothing: Bytes[8]
    kernel_side: Bytes[8]
    from_task: Bytes[16]
    vruntime: u64

strings = ArrayMap[Strings](max_entries=1)

@raw_tracepoint("sys_enter")
def read(ctx: RawTracepointContext) -> int:
    s = strings[0]
    s.whole = user_string(ctx.arg(0))
    s.cut = user_string(ctx.arg(0))
    s.exact = user_string(ctx.arg(0))
    s.nothing = user_string(ctx.arg(1))
    s.kernel_side = kernel_string(ctx.arg(0))
    s.from_task = current_task().comm
    s.vruntime = u64(current_task().se.vruntime != 0)
    return 0
"""


def test_probe_reads_match_the_kernel(both) -> None:
    text = ctypes.create_string_buffer(b"hello")  # 5 characters and the NUL
    process = HostProcess.current(memory={ctypes.addressof(text): text.raw},
                                  task={"se.vruntime": 1})
    kernel, host = both(PROBE_READS, process)
    args = struct.pack("<QQ", ctypes.addressof(text), 0x1000) + bytes(80)
    assert outcome(host.read.test_run(ctx=args)) == outcome(kernel.read.test_run(ctx=args))
    assert host.strings[0] == kernel.strings[0]
    assert host.strings[0].cut == b"hello\0\0\0" and host.strings[0].nothing == bytes(8)


RING = """
from pykex import xdp, XdpContext, XDP_PASS, RingBuffer, Struct, Array, u64, u32

class Big(Struct):
    sequence: u64
    padding: Array[u64, 62]

events = RingBuffer(size=4096)

@xdp()
def prog(ctx: XdpContext) -> int:
    with events.reserve(Big) as record:
        record.sequence = u64(len(ctx.packet))
        if ctx.packet[0] == 1:
            assert False, "refused"
    events.output(u32(7))
    return XDP_PASS
"""


def test_ring_buffer_accounting_matches_the_kernel(both) -> None:
    kernel, host = both(RING)

    def state(ext: Extension | HostExtension) -> tuple[list[int], int]:
        return [len(r) for r in ext.events.drain()], ext.events.drops

    def run(frame: bytes, times: int) -> None:
        for ext in (kernel, host):
            for _ in range(times):
                ext.prog.test_run(frame)

    run(bytes(20), 12)
    assert state(host) == state(kernel)
    # A discarded record keeps its room until the reader passes it.
    run(b"\x01" + bytes(19), 7)
    run(bytes(20), 3)
    assert state(host) == state(kernel)


SMALL_RECORDS = """
from pykex import xdp, XdpContext, XDP_PASS, RingBuffer, u64

events = RingBuffer(size=4096)

@xdp()
def prog(ctx: XdpContext) -> int:
    events.output(u64(len(ctx.packet)))
    return XDP_PASS
"""


def test_a_ring_never_fills_to_its_last_byte(both) -> None:
    kernel, host = both(SMALL_RECORDS)
    for ext in (kernel, host):
        for _ in range(300):  # 16 bytes each: the producer stays under 4096 bytes ahead
            ext.prog.test_run(bytes(20))
    got = [(len(ext.events.drain()), ext.events.drops) for ext in (kernel, host)]
    assert got == [(255, 45)] * 2


DEVICES = """
from pykex import xdp, XdpContext, XDP_PASS, DevMap, redirect_map, u32

devices = DevMap(max_entries=4)

@xdp()
def forward(ctx: XdpContext) -> int:
    return redirect_map(devices, u32(ctx.packet[0]), XDP_PASS)
"""


def test_device_maps_match_the_kernel(both) -> None:
    kernel, host = both(DEVICES)
    # Slot 0 holds the loopback device. (The kernel's view of a device map is
    # a bare Map, so the test writes the slot through the syscall.)
    syscall.map_update(int(kernel.devices.fd), struct.pack("<I", 0), struct.pack("<I", 1))
    host.devices[0] = 1
    for slot in range(4):
        frame = bytes([slot]) + bytes(13)
        expected = kernel.forward.test_run(frame)
        assert outcome(host.forward.test_run(frame)) == outcome(expected)
    assert dict(host.devices.items()) == {0: 1}
