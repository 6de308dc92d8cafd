"""Valid extensions: they check clean and lower to well-formed IR."""

from __future__ import annotations

import os

import pytest

from pykex.btf import BTFError, parse_format, tracepoint_format
from pykex.ir.interp import Interpreter
from pykex.ir.nodes import Call, GlobalAddr, Load, ModuleIR, PacketPtr, Raise
from pykex.lang import CompileError, check, compile_to_ir

from .helpers import compile_ok, source

DESIGN_EXAMPLE = """
ETH_P_IP = 0x0800

class Ethernet(Struct):
    dst: Array[u8, 6]
    src: Array[u8, 6]
    proto: be16

class IPv4(Struct):
    version_ihl: u8
    tos: u8
    total_length: be16
    id: be16
    fragment: be16
    ttl: u8
    protocol: u8
    checksum: be16
    saddr: be32
    daddr: be32

class Counter(Struct):
    packets: u64
    bytes: u64

blocked = HashMap[u32, u8](max_entries=1024)
stats = PerCpuArray[Counter](max_entries=256)

@xdp(on_error=XDP_PASS)
def firewall(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    if eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = ctx.packet.read(Ethernet.size, IPv4)
    c = stats[u32(ip.protocol)]
    c.packets += 1
    c.bytes += len(ctx.packet)
    if ip.saddr in blocked:
        return XDP_DROP
    return XDP_PASS
"""


def _instructions(module: ModuleIR, kind: type) -> list:
    return [i for p in module.programs for b in p.function.blocks for i in b.instrs
            if isinstance(i, kind)]


def test_design_example_compiles_and_runs() -> None:
    module = compile_ok(DESIGN_EXAMPLE)
    assert [(m.name, m.kind, m.key_size, m.value_size, m.max_entries) for m in module.maps] == [
        ("blocked", "HASH", 4, 1, 1024), ("stats", "PERCPU_ARRAY", 4, 16, 256)]
    program = module.programs[0]
    assert (program.name, program.kind, program.on_error) == ("firewall", "xdp", 2)
    assert len(_instructions(module, PacketPtr)) == 2, module
    machine = Interpreter(module, cpus=1)
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    frame = bytes(12) + b"\x08\x00" + ip
    assert machine.run("firewall", frame).retval == 2
    # be32 fields read as host-order values: 10.0.0.1 is the u32 0x0A000001
    machine.maps["blocked"].update((0x0A000001).to_bytes(4, "little"), b"\x01", 0, 0)
    assert machine.run("firewall", frame).retval == 1
    short = machine.run("firewall", frame[:20])
    assert short.exception is not None and short.exception.kind == "IndexError"
    assert short.retval == 2  # on_error
    counter = machine.maps["stats"].lookup((6).to_bytes(4, "little"), 0)
    assert counter is not None
    assert int.from_bytes(counter[:8], "little") == 2
    assert int.from_bytes(counter[8:], "little") == 2 * len(frame)


def test_module_constants_fold_at_compile_time() -> None:
    module = compile_ok("""
BASE = 10
SHIFTED = BASE << 4
MASK = (1 << 12) - 1
MIXED = (SHIFTED + MASK) // 3 % 1000
PORT = u16(0x1_0050)
NEGATIVE = -BASE // 3

@xdp()
def prog(ctx: XdpContext) -> int:
    if ctx.ingress_ifindex == 0:
        return MIXED
    if ctx.ingress_ifindex == 1:
        return PORT
    return u32(NEGATIVE + 100)
""")
    function = module.programs[0].function
    text = str(function)
    assert f"return {(160 + 4095) // 3 % 1000}" in text, text
    assert "return 80" in text, text  # u16(...) wraps at compile time
    assert not [i for b in function.blocks for i in b.instrs if type(i).__name__ == "BinOp"]
    machine = Interpreter(module)
    assert machine.run("prog", ctx=bytes(24)).retval == (160 + 4095) // 3 % 1000
    ctx = bytearray(24)
    ctx[12] = 2
    assert machine.run("prog", ctx=bytes(ctx)).retval == -10 // 3 + 100


def test_constant_expressions_with_errors_are_reported() -> None:
    diagnostics = check(source("A = 1 // 0\nB = A + C\n"), "fw.py")
    assert [d.headline for d in diagnostics] == [
        "fw.py:2:4: error: division by zero in a constant expression",
        "fw.py:3:4: error: not a constant expression",
    ]


def test_all_errors_of_a_file_are_reported_in_one_run() -> None:
    text = source("""
@xdp()
def prog(ctx: XdpContext) -> int:
    a = u32(1) + i32(2)
    b = 1.5
    return XDP_PAS
""")
    headlines = [d.headline for d in check(text, "fw.py")]
    assert headlines == [
        "fw.py:4:8: error: cannot add u32 and i32",
        "fw.py:5:8: error: floats are not supported",
        "fw.py:6:11: error: unknown name 'XDP_PAS'",
    ]
    with pytest.raises(CompileError) as caught:
        compile_to_ir(text, "fw.py")
    assert [d.headline for d in caught.value.diagnostics] == headlines


def test_diagnostic_rendering_has_source_caret_and_hint() -> None:
    text = source("""
@xdp()
def prog(ctx: XdpContext) -> int:
    a = u32(1)
    b = i64(2)
    x = a + b
    return XDP_PASS
""")
    (diagnostic,) = check(text, "fw.py")
    assert str(diagnostic) == (
        "fw.py:6:8: error: cannot add u32 and i64\n"
        "    x = a + b\n"
        "        ^\n"
        "hint: convert one side, e.g. i64(a) + b"
    )


def test_hint_suggests_close_names() -> None:
    (diagnostic,) = check(source("""
@xdp()
def prog(ctx: XdpContext) -> int:
    verdict = XDP_PASS
    return verdct
"""), "fw.py")
    assert diagnostic.hint == "did you mean 'verdict'?"


def test_unused_helper_functions_are_still_checked() -> None:
    diagnostics = check(source("def helper(a: u8) -> u8:\n    return a + 1000\n"), "fw.py")
    assert [d.headline for d in diagnostics] == ["fw.py:3:15: error: 1000 does not fit in u8"]


def test_source_may_be_a_path(tmp_path) -> None:
    path = tmp_path / "ext.py"
    path.write_text(source("@xdp()\ndef prog(ctx: XdpContext) -> int:\n    return XDP_DROP\n"))
    module = compile_to_ir(path)
    assert module.file == str(path)
    assert [p.name for p in module.programs] == ["prog"]


def test_tc_program_writes_mark_and_reads_fields() -> None:
    module = compile_ok("""
@tc(direction="egress", on_error=2)
def shape(ctx: TcContext) -> int:
    if ctx.len > 100:
        ctx.mark = ctx.ifindex + 1
    return 0
""")
    program = module.programs[0]
    assert (program.kind, program.attach, program.on_error) == ("tc", {"direction": "egress"}, 2)
    ctx = bytearray(192)
    ctx[0] = 200  # len
    ctx[40] = 7  # ifindex
    machine = Interpreter(module)
    assert machine.run("shape", ctx=bytes(ctx)).exception is None


OPENAT = parse_format(
    "name: sys_enter_openat\nID: 600\nformat:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
    "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
    "\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n"
    "\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n"
    "\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;\n"
    "\nprint fmt: \"\"\n",
    "syscalls",
)

TRACEPOINT = """
opens = HashMap[u32, u64](max_entries=64)

@tracepoint("syscalls/sys_enter_openat")
def on_open(ctx: TracepointContext) -> int:
    pid = u32(ctx.common_pid)
    n = opens.setdefault(pid, 0)
    opens[pid] = n + 1
    if ctx.flags & 0x40:
        print("O_CREAT by", pid)
    return 0
"""


def test_tracepoint_fields_are_typed_from_the_format() -> None:
    module = compile_ok(TRACEPOINT, tracepoints=lambda g, n: OPENAT)
    program = module.programs[0]
    assert (program.kind, program.attach) == (
        "tracepoint", {"tracepoint": "syscalls/sys_enter_openat"})
    loads = [(i.offset, str(i.ty)) for i in _instructions(module, Load)
             if i.base.hint == "ctx"]
    assert loads == [(4, "i32"), (32, "u64")]
    assert any(m.name == ".rodata" for m in module.maps)
    record = bytearray(40)
    record[4] = 42
    record[32] = 0x41
    machine = Interpreter(module)
    machine.run("on_open", ctx=bytes(record))
    assert machine.trace == ["O_CREAT by 42"]


@pytest.mark.skipif(os.geteuid() != 0, reason="reading tracefs needs root")
def test_tracepoint_format_read_from_this_kernel() -> None:
    try:
        live = tracepoint_format("syscalls", "sys_enter_openat")
    except BTFError as missing:
        pytest.skip(f"no syscalls tracepoints here: {missing}")
    module = compile_ok(TRACEPOINT)
    offsets = {i.offset for i in _instructions(module, Load) if i.base.hint == "ctx"}
    assert offsets == {live.field("common_pid").offset, live.field("flags").offset}


def test_raw_tracepoint_reads_arguments() -> None:
    module = compile_ok("""
@raw_tracepoint("sched_switch")
def switch(ctx: RawTracepointContext) -> int:
    return u32(ctx.arg(1) & 0xFF)
""")
    assert module.programs[0].attach == {"tracepoint": "sched_switch"}
    ctx = (0).to_bytes(8, "little") + (0x1234).to_bytes(8, "little")
    assert Interpreter(module).run("switch", ctx=ctx).retval == 0x34


def test_map_kinds_and_flags() -> None:
    module = compile_ok("""
class Prefix(Struct):
    prefixlen: u32
    addr: Array[u8, 4]

class Event(Struct):
    pid: u32
    code: u32

routes = LpmTrie[Prefix, u32](max_entries=128)
recent = LruHashMap[u64, u8](max_entries=32)
table = ArrayMap[u64](max_entries=8)
events = RingBuffer(size=4096)

@xdp()
def prog(ctx: XdpContext) -> int:
    key = Prefix(prefixlen=32)
    key.addr[0] = 10
    if (hop := routes.get(key)) is not None:
        events.output(Event(pid=hop, code=1))
    return 2
""")
    kinds = {m.name: (m.kind, m.key_size, m.value_size, m.max_entries, m.flags)
             for m in module.maps}
    assert kinds == {
        "routes": ("LPM_TRIE", 8, 4, 128, 1),
        "recent": ("LRU_HASH", 8, 1, 32, 0),
        "table": ("ARRAY", 4, 8, 8, 0),
        "events": ("RINGBUF", 0, 0, 4096, 0),
        ".data.drops": ("ARRAY", 4, 8, 1, 0),  # one u64 per ring: records that found it full
    }
    assert [i.helper for i in _instructions(module, Call)] == [
        "bpf_map_lookup_elem", "bpf_ringbuf_output"]


def test_print_uses_a_read_only_format_in_rodata() -> None:
    module = compile_ok("""
@xdp()
def prog(ctx: XdpContext) -> int:
    print("hello")
    print("hello")
    print("n", u64(3))
    return 2
""")
    rodata = next(m for m in module.maps if m.name == ".rodata")
    assert rodata.initial is not None and rodata.initial.startswith(b"hello\0")
    assert b"n %llu\0" in rodata.initial
    assert rodata.flags == 1 << 7  # BPF_F_RDONLY_PROG
    addresses = [i.offset for i in _instructions(module, GlobalAddr)]
    assert addresses[0] == addresses[1]  # one copy of each string


def test_every_raise_has_a_location() -> None:
    module = compile_ok(DESIGN_EXAMPLE)
    raises = _instructions(module, Raise)
    assert raises and all(r.loc is not None and r.loc.line > 1 for r in raises)


def test_internal_errors_become_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    from pykex.lang import lower

    def crash(self, node):  # a bug inside the compiler
        raise RuntimeError("boom")

    monkeypatch.setattr(lower.FunctionLowering, "stmt_Pass", crash)
    (diagnostic,) = check(source("@xdp()\ndef p(ctx: XdpContext) -> int:\n    pass\n"
                                 "    return 1\n"), "fw.py")
    assert diagnostic.message.startswith("internal compiler error: RuntimeError boom")
    assert "please report" in (diagnostic.hint or "")
