"""Typed reads of user and kernel memory (``user_read``, ``kernel_read``) and
fixed-array fields of tracepoint records."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from pykex.btf import BTFError, parse_format, tracepoint_format
from pykex.compiler import Compilation
from pykex.ir.interp import HostProcess, Interpreter
from pykex.ir.nodes import Call, Load
from pykex.lang import check, compile_to_ir

CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1

SLEEPS = """
from pykex import (tracepoint, TracepointContext, HashMap, Struct, current_pid, current_task,
                   kernel_read, user_read, i64, u32, u64)

class Timespec(Struct):
    sec: i64
    nsec: i64

class Seen(Struct):
    request: Timespec
    nsec: u64
    tgid: u32

seen = HashMap[u64, Seen](max_entries=64)

@tracepoint("syscalls/sys_enter_clock_nanosleep")
def on_sleep(ctx: TracepointContext) -> int:
    address = u64(ctx.rqtp)
    if ctx.which_clock == 0:
        address = 16  # never mapped: the read faults and gives zeros
    s = Seen()
    s.request = user_read(address, Timespec)
    s.nsec = user_read(address + 8, u64)
    s.tgid = kernel_read(u64(current_task()) + TGID_OFFSET, u32)
    seen[u64(current_pid()) << 8 | ctx.which_clock] = s
    return 0
"""


def _tgid_offset() -> int:
    from pykex.btf import Kind, load_vmlinux

    spec = load_vmlinux()
    return spec.member(spec.find("task_struct", Kind.STRUCT), "tgid").byte_offset


def _sleep(clock: int, nanoseconds: int) -> None:
    class Timespec(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]

    libc = ctypes.CDLL(None, use_errno=True)
    request = Timespec(0, nanoseconds)
    assert libc.clock_nanosleep(clock, 0, ctypes.byref(request), None) == 0


@pytest.mark.kernel
def test_user_and_kernel_reads_in_a_syscall_tracepoint() -> None:
    from pykex.runtime import load

    try:
        tracepoint_format("syscalls", "sys_enter_clock_nanosleep")
    except BTFError as missing:
        pytest.skip(f"no syscalls tracepoints here: {missing}")
    source = f"TGID_OFFSET = {_tgid_offset()}\n" + SLEEPS
    with load(Compilation("ext.py", source)) as ext, ext.on_sleep.attach():
        _sleep(CLOCK_MONOTONIC, 1_234_567)
        _sleep(CLOCK_REALTIME, 7_654_321)  # the same read, now faulting
        good = ext.seen[os.getpid() << 8 | CLOCK_MONOTONIC]
        faulted = ext.seen[os.getpid() << 8 | CLOCK_REALTIME]
    assert (good.request.sec, good.request.nsec, good.nsec) == (0, 1_234_567, 1_234_567)
    assert (faulted.request.sec, faulted.request.nsec, faulted.nsec) == (0, 0, 0)
    assert good.tgid == faulted.tgid == os.getpid()


SLEEP_FORMAT = parse_format(
    "name: sys_enter_clock_nanosleep\nID: 1\nformat:\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"
    "\tfield:const clockid_t which_clock;\toffset:16;\tsize:8;\tsigned:0;\n"
    "\tfield:const struct __kernel_timespec * rqtp;\toffset:32;\tsize:8;\tsigned:0;\n"
    "\nprint fmt: \"\"\n",
    "syscalls",
)


def test_reads_take_their_size_from_the_type() -> None:
    module = compile_to_ir("TGID_OFFSET = 2000\n" + SLEEPS, "ext.py",
                           tracepoints=lambda group, name: SLEEP_FORMAT)
    calls = [(i.helper, i.args[1]) for b in module.programs[0].function.blocks
             for i in b.instrs if isinstance(i, Call) and i.helper.startswith("bpf_probe")]
    assert calls == [("bpf_probe_read_user", 16), ("bpf_probe_read_user", 8),
                     ("bpf_probe_read_kernel", 4)]


def request_bytes(seconds: int, nanoseconds: int) -> bytes:
    return seconds.to_bytes(8, "little") + nanoseconds.to_bytes(8, "little")


def test_user_and_kernel_reads_in_host_mode() -> None:
    module = compile_to_ir("TGID_OFFSET = 2000\n" + SLEEPS, "ext.py",
                           tracepoints=lambda group, name: SLEEP_FORMAT)
    task, request = 0xFFFF_8880_0200_0000, 0x7000_0000
    process = HostProcess(pid=42, tgid=42, task_address=task, memory={
        request: request_bytes(3, 1_234_567),
        task + 2000: (42).to_bytes(4, "little"),
    })
    machine = Interpreter(module, process=process)
    for clock in (CLOCK_MONOTONIC, CLOCK_REALTIME):
        record = bytearray(48)
        record[16] = clock
        record[32:40] = request.to_bytes(8, "little")
        assert machine.run("on_sleep", ctx=bytes(record)).exception is None
    good = machine.maps["seen"].lookup((42 << 8 | CLOCK_MONOTONIC).to_bytes(8, "little"), 0)
    faulted = machine.maps["seen"].lookup((42 << 8 | CLOCK_REALTIME).to_bytes(8, "little"), 0)
    assert bytes(good[:24]) == request_bytes(3, 1_234_567) + (1_234_567).to_bytes(8, "little")
    assert bytes(faulted[:24]) == bytes(24)
    assert good[24:28] == faulted[24:28] == (42).to_bytes(4, "little")


@pytest.mark.parametrize(("call", "message"), [
    ("user_read(ctx.rqtp)", "expected user_read(address, Type)"),
    ("user_read(ctx.rqtp, 8)", "'8' is not a type pykex knows"),
    ("user_read(ctx.rqtp, Lock)", "user_read(address, Type) reads an integer, bool, Struct or "
     "Array (without a SpinLock), not Lock"),
    ("kernel_read(i64(-1), u64)", "cannot use a i64 value as u64"),
])
def test_read_mistakes(call: str, message: str) -> None:
    source = f"""
from pykex import tracepoint, TracepointContext, Struct, SpinLock, user_read, kernel_read, i64, u64

class Lock(Struct):
    lock: SpinLock

@tracepoint("syscalls/sys_enter_clock_nanosleep")
def prog(ctx: TracepointContext) -> int:
    x = {call}
    return 0
"""
    diagnostics = check(source, "ext.py", tracepoints=lambda group, name: SLEEP_FORMAT)
    assert [d.message for d in diagnostics] == [message]


# -- array fields of tracepoint records ----------------------------------------------------------

STATE_FORMAT = parse_format(
    "name: inet_sock_set_state\nID: 2\nformat:\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"
    "\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;\n"
    "\tfield:__u8 saddr[4];\toffset:30;\tsize:4;\tsigned:0;\n"
    "\tfield:__s16 deltas[3];\toffset:34;\tsize:6;\tsigned:1;\n"
    "\tfield:char name[12];\toffset:40;\tsize:12;\tsigned:0;\n"
    "\tfield:__u64 stamps[2];\toffset:56;\tsize:16;\tsigned:0;\n"
    "\nprint fmt: \"\"\n",
    "sock",
)

ARRAYS = """
from pykex import tracepoint, TracepointContext, ArrayMap, Struct, Array, Bytes, u8, u64, i16

class Copy(Struct):
    saddr: Array[u8, 4]
    deltas: Array[i16, 3]
    name: Bytes[12]
    stamps: Array[u64, 2]

copies = ArrayMap[Copy](max_entries=1)

@tracepoint("sock/inet_sock_set_state")
def on_state(ctx: TracepointContext) -> int:
    c = copies[0]
    c.saddr = ctx.saddr
    c.deltas = ctx.deltas
    c.name = ctx.name
    c.stamps = ctx.stamps
    return i16(ctx.saddr[3]) + ctx.deltas[2]
"""


def _state_record() -> bytes:
    record = bytearray(72)
    record[30:34] = bytes([10, 0, 0, 7])
    record[34:40] = b"".join(v.to_bytes(2, "little", signed=True) for v in (-1, 300, -20))
    record[40:52] = b"pykex\0stale!"  # the kernel may leave bytes after the NUL
    record[56:72] = (5).to_bytes(8, "little") + (2**63).to_bytes(8, "little")
    return bytes(record)


def test_array_fields_are_copied_with_aligned_loads() -> None:
    module = compile_to_ir(ARRAYS, "ext.py", tracepoints=lambda group, name: STATE_FORMAT)
    loads = [(i.offset, i.ty.size) for b in module.programs[0].function.blocks
             for i in b.instrs if isinstance(i, Load) and i.base.hint == "ctx"]
    assert all(offset % size == 0 for offset, size in loads)  # what the kernel allows
    assert (30, 2) in loads and (56, 8) in loads
    machine = Interpreter(module)
    result = machine.run("on_state", ctx=_state_record())
    assert (result.exception, result.retval) == (None, (7 - 20) & 0xFFFFFFFF)
    copy = machine.maps["copies"].lookup(bytes(4), 0)
    assert bytes(copy[:4]) == bytes([10, 0, 0, 7])
    assert bytes(copy[4:10]) == _state_record()[34:40]
    assert bytes(copy[10:22]) == b"pykex".ljust(12, b"\0")  # a string: zeros after the NUL
    assert bytes(copy[24:40]) == _state_record()[56:72]


def test_array_fields_are_read_only() -> None:
    source = ARRAYS.replace("    c = copies[0]\n", "    c = copies[0]\n    ctx.saddr = c.saddr\n")
    diagnostics = check(source, "ext.py", tracepoints=lambda group, name: STATE_FORMAT)
    assert [d.message for d in diagnostics] == ["TracepointContext.saddr is read-only"]


RENAMES = """
from pykex import tracepoint, TracepointContext, HashMap, Struct, Bytes, u32

class Rename(Struct):
    old: Bytes[16]
    new: Bytes[16]

renames = HashMap[u32, Rename](max_entries=1024)

@tracepoint("task/task_rename")
def on_rename(ctx: TracepointContext) -> int:
    renames[u32(ctx.pid)] = Rename(old=ctx.oldcomm, new=ctx.newcomm)
    return 0
"""


@pytest.mark.kernel
def test_char_arrays_of_a_real_tracepoint() -> None:
    from pykex.runtime import load

    try:
        tracepoint_format("task", "task_rename")
    except BTFError as missing:
        pytest.skip(f"no task_rename tracepoint here: {missing}")
    with load(Compilation("ext.py", RENAMES)) as ext, ext.on_rename.attach():
        child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid()); "
                                "open('/proc/self/comm', 'w').write('pykex-renamed')"],
                               capture_output=True, check=True, text=True)
        rename = ext.renames[int(child.stdout)]
    assert bytes(rename.new) == b"pykex-renamed".ljust(16, b"\0")
    assert bytes(rename.old) == os.path.basename(sys.executable).encode()[:15].ljust(16, b"\0")


ADDRESSES = """
from pykex import tracepoint, TracepointContext, ArrayMap, Struct, Array, u8

class Addresses(Struct):
    saddr: Array[u8, 4]
    daddr: Array[u8, 4]
    saddr_v6: Array[u8, 16]
    daddr_v6: Array[u8, 16]

last = ArrayMap[Addresses](max_entries=1)

@tracepoint("sock/inet_sock_set_state")
def on_state(ctx: TracepointContext) -> int:
    a = last[0]
    a.saddr = ctx.saddr
    a.daddr = ctx.daddr
    a.saddr_v6 = ctx.saddr_v6
    a.daddr_v6 = ctx.daddr_v6
    return ctx.saddr_v6[15]
"""


@pytest.mark.kernel
def test_byte_arrays_of_inet_sock_set_state_load() -> None:
    from pykex.runtime import load

    try:
        tracepoint_format("sock", "inet_sock_set_state")
    except BTFError as missing:
        pytest.skip(f"no inet_sock_set_state tracepoint here: {missing}")
    with load(Compilation("ext.py", ADDRESSES)) as ext:
        assert ext.on_state.name == "on_state"
