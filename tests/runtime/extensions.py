"""Extensions for the runtime tests, as source text and as the IR the front end
would lower them to (built by hand, so these tests do not depend on the front end).

Locations point into the source text: a ``Raise`` inside ``read_header``,
inlined into ``parse_ip``, inlined into ``firewall``, carries the
``Loc.caller`` chain the front end gives inlined calls.
"""

from __future__ import annotations

import os

from pykex.ir.nodes import (
    U8,
    U32,
    U64,
    BinOp,
    Block,
    Branch,
    Call,
    ContextPtr,
    FrameAddr,
    Function,
    Instr,
    Jump,
    Load,
    Loc,
    LoopBack,
    MapDecl,
    MapRef,
    ModuleIR,
    PacketLen,
    PacketPtr,
    ProgramIR,
    Raise,
    Return,
    Store,
    Temp,
)
from pykex.layout import Struct, u8, u32, u64

XDP_DROP, XDP_PASS = 1, 2
FILE = "fw.py"
GETPID = 39  # x86-64 syscall number

SOURCE = """\
from pykex import xdp, raw_tracepoint, XdpContext, RawTracepointContext
from pykex import XDP_PASS, XDP_DROP, HashMap, PerCpuArray, Struct, u8, u32, u64
from pykex.net import IPv4


class Counter(Struct):
    packets: u64
    bytes: u64


blocked = HashMap[u32, u8](max_entries=1024)
stats = PerCpuArray[Counter](max_entries=256)


def read_header(ctx: XdpContext, offset: u32) -> IPv4:
    return ctx.packet.read(offset, IPv4)


def parse_ip(ctx: XdpContext) -> IPv4:
    hdr = read_header(ctx, 14)
    return hdr


@xdp(on_error=XDP_PASS)
def firewall(ctx: XdpContext) -> int:
    ip = parse_ip(ctx)
    c = stats[ip.protocol]
    c.packets += 1
    c.bytes += len(ctx.packet)
    if ip.saddr in blocked:
        return XDP_DROP
    return XDP_PASS


def check_syscall(nr: u64) -> None:
    if nr == 39:
        raise ValueError(f"syscall {nr} is not allowed")


@raw_tracepoint("sys_enter")
def watch(ctx: RawTracepointContext) -> int:
    if current_pid() == PID:
        check_syscall(ctx.arg(1))
    return 0
"""

LINES = SOURCE.splitlines()


def line_of(text: str) -> int:
    """The 1-based number of the only source line containing ``text``."""
    found = [n for n, line in enumerate(LINES, 1) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


def loc(text: str, function: str, caller: Loc | None = None) -> Loc:
    line = LINES[line_of(text) - 1]
    return Loc(FILE, line_of(text), len(line) - len(line.lstrip()), function, caller)


class Counter(Struct):
    packets: u64
    bytes: u64


class Builder:
    """Appends instructions to blocks of one function."""

    def __init__(self, name: str, frame_size: int) -> None:
        self.function = Function(name, frame_size=frame_size)

    def temp(self, hint: str, pointer: bool = False) -> Temp:
        return self.function.new_temp(hint, pointer)

    def block(self, label: str, *instrs: Instr) -> None:
        self.function.blocks.append(Block(label, list(instrs)))


# Where firewall's statements are, and the chain of inlined calls that reads the header.
IN_FIREWALL = loc("ip = parse_ip(ctx)", "firewall")
IN_PARSE_IP = loc("hdr = read_header(ctx, 14)", "parse_ip", IN_FIREWALL)
IN_READ_HEADER = loc("return ctx.packet.read(offset, IPv4)", "read_header", IN_PARSE_IP)
AT_LOOKUP = loc("c = stats[ip.protocol]", "firewall")
AT_PACKETS = loc("c.packets += 1", "firewall")
AT_BYTES = loc("c.bytes += len(ctx.packet)", "firewall")
AT_BLOCKED = loc("if ip.saddr in blocked:", "firewall")
AT_DROP = loc("return XDP_DROP", "firewall")
AT_PASS = loc("return XDP_PASS", "firewall")


def firewall() -> ProgramIR:
    b = Builder("firewall", frame_size=8)
    ip, key, stats_map, counter = (b.temp(h, pointer=True) for h in ("ip", "key", "stats", "c"))
    proto, saddr, length = b.temp("proto"), b.temp("saddr"), b.temp("len")
    packets, packets2, octets, octets2 = (b.temp(h) for h in ("n", "n", "b", "b"))
    key2, blocked_map, hit = (b.temp(h, pointer=True) for h in ("key", "blocked", "hit"))
    short_len = b.temp("len")
    b.block(
        "entry",
        PacketPtr(ip, 14, 20, "short", loc=IN_READ_HEADER),
        Load(proto, ip, 9, U8, loc=AT_LOOKUP),
        Load(saddr, ip, 12, U32, big_endian=True, loc=AT_BLOCKED),
        FrameAddr(key, 0, loc=AT_LOOKUP),
        Store(key, 0, proto, U32, loc=AT_LOOKUP),
        MapRef(stats_map, "stats", loc=AT_LOOKUP),
        Call(counter, "bpf_map_lookup_elem", [stats_map, key], loc=AT_LOOKUP),
        Branch("eq", counter, 0, False, "missing", "count", loc=AT_LOOKUP),
    )
    b.block(
        "count",
        Load(packets, counter, 0, U64, loc=AT_PACKETS),
        BinOp(packets2, "add", packets, 1, U64, loc=AT_PACKETS),
        Store(counter, 0, packets2, U64, loc=AT_PACKETS),
        PacketLen(length, loc=AT_BYTES),
        Load(octets, counter, 8, U64, loc=AT_BYTES),
        BinOp(octets2, "add", octets, length, U64, loc=AT_BYTES),
        Store(counter, 8, octets2, U64, loc=AT_BYTES),
        FrameAddr(key2, 4, loc=AT_BLOCKED),
        Store(key2, 0, saddr, U32, loc=AT_BLOCKED),
        MapRef(blocked_map, "blocked", loc=AT_BLOCKED),
        Call(hit, "bpf_map_lookup_elem", [blocked_map, key2], loc=AT_BLOCKED),
        Branch("ne", hit, 0, False, "drop", "pass", loc=AT_BLOCKED),
    )
    b.block("drop", Return(XDP_DROP, loc=AT_DROP))
    b.block("pass", Return(XDP_PASS, loc=AT_PASS))
    b.block(
        "missing",
        Raise("IndexError", "index {} out of range for stats ({} entries)", [proto, 256],
              loc=AT_LOOKUP),
    )
    b.block(
        "short",
        PacketLen(short_len, loc=IN_READ_HEADER),
        Raise("IndexError", "packet offset {} + {} > length {}", [14, 20, short_len],
              loc=IN_READ_HEADER),
    )
    return ProgramIR("firewall", "xdp", b.function, on_error=XDP_PASS, loc=IN_FIREWALL)


def watch(pid: int) -> ProgramIR:
    """Raises ValueError when process ``pid`` enters getpid."""
    in_watch = loc("check_syscall(ctx.arg(1))", "watch")
    at_raise = loc('raise ValueError(f"syscall {nr} is not allowed")', "check_syscall", in_watch)
    at_if = loc("if current_pid() == PID:", "watch")
    at_return = loc("return 0", "watch")
    b = Builder("watch", frame_size=0)
    ctx, pid_tgid, tgid, nr = b.temp("ctx", pointer=True), b.temp("id"), b.temp("pid"), b.temp("nr")
    b.block(
        "entry",
        Call(pid_tgid, "bpf_get_current_pid_tgid", [], loc=at_if),
        BinOp(tgid, "shr", pid_tgid, 32, U64, loc=at_if),
        Branch("eq", tgid, pid, False, "mine", "done", loc=at_if),
    )
    b.block(
        "mine",
        ContextPtr(ctx, loc=in_watch),
        Load(nr, ctx, 8, U64, loc=in_watch),
        Branch("eq", nr, GETPID, False, "refuse", "done", loc=at_raise),
    )
    b.block("refuse", Raise("ValueError", "syscall {} is not allowed", [nr], loc=at_raise))
    b.block("done", Return(0, loc=at_return))
    return ProgramIR("watch", "raw_tracepoint", b.function, on_error=0,
                     attach={"tracepoint": "sys_enter"}, loc=in_watch)


def module(pid: int | None = None) -> ModuleIR:
    """The firewall module; ``watch`` watches process ``pid`` (default: this one)."""
    maps = [
        MapDecl("blocked", "HASH", 4, 1, 1024, key_type=u32, value_type=u8,
                loc=loc("blocked = HashMap", "<module>")),
        MapDecl("stats", "PERCPU_ARRAY", 4, Counter.size, 256, key_type=u32,
                value_type=Counter, loc=loc("stats = PerCpuArray", "<module>")),
    ]
    return ModuleIR(
        FILE, SOURCE, maps=maps,
        programs=[firewall(), watch(os.getpid() if pid is None else pid)],
    )


SPIN_SOURCE = """\
from pykex import xdp, XdpContext, XDP_PASS


@xdp(on_error=XDP_PASS)
def spin(ctx: XdpContext) -> int:
    while True:
        pass
"""


def spin_module() -> ModuleIR:
    """An XDP program that loops until the kernel's loop budget runs out."""
    lines = SPIN_SOURCE.splitlines()
    at_while = Loc("spin.py", lines.index("    while True:") + 1, 4, "spin")
    b = Builder("spin", frame_size=0)
    b.block("entry", Jump("loop", loc=at_while))
    b.block("loop", LoopBack("loop", "exhausted", loc=at_while))
    b.block("exhausted", Raise("TerminationError", "loop ran out of its time budget",
                               loc=at_while))
    program = ProgramIR("spin", "xdp", b.function, on_error=XDP_PASS, loc=at_while)
    return ModuleIR("spin.py", SPIN_SOURCE, programs=[program])


def ipv4_packet(protocol: int = 6, saddr: bytes = bytes([10, 0, 0, 1]), payload: int = 26) -> bytes:
    """An Ethernet + IPv4 frame (header fields the firewall reads, the rest zero)."""
    ethernet = bytes(12) + b"\x08\x00"
    header = bytearray(20)
    header[0] = 0x45
    header[9] = protocol
    header[12:16] = saddr
    return ethernet + bytes(header) + bytes(payload)
