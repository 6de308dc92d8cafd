"""Host mode's description of the running task: what the kernel would take from
the real system comes from a HostProcess, and only from it."""

from __future__ import annotations

import os
import struct
import textwrap

import pytest

from pykex.compiler import Compilation
from pykex.ir.interp import FakeMemory
from pykex.runtime import HostProcess, load_host

TASK = """
from pykex import raw_tracepoint, RawTracepointContext, ArrayMap, Struct, Bytes, u32, u64
from pykex import comm, current_task, uid_gid, pid_tgid, user_string, kernel_string

class Seen(Struct):
    pid_tgid: u64
    uid_gid: u64
    comm: Bytes[16]
    task_comm: Bytes[16]
    parent: u32
    vruntime: u64
    text: Bytes[8]
    kernel_text: Bytes[8]

seen = ArrayMap[Seen](max_entries=1)

@raw_tracepoint("sys_enter")
def probe(ctx: RawTracepointContext) -> int:
    s = seen[0]
    s.pid_tgid = pid_tgid()
    s.uid_gid = uid_gid()
    s.comm = comm()
    s.task_comm = current_task().comm
    s.parent = u32(current_task().real_parent.tgid)
    s.vruntime = current_task().se.vruntime
    s.text = user_string(ctx.arg(0))
    s.kernel_text = kernel_string(ctx.arg(1))
    return 0
"""

USER_TEXT = 0x7F00_0000_1000
KERNEL_TEXT = 0xFFFF_8880_0900_0000


def run(ext, user: int = USER_TEXT, kernel: int = KERNEL_TEXT, **options):
    result = ext.probe.test_run(ctx=struct.pack("<QQ", user, kernel) + bytes(80), **options)
    assert result.exception is None
    return ext.seen[0]


def test_every_answer_comes_from_the_process_description() -> None:
    process = HostProcess(pid=101, tgid=100, ppid=7, uid=1000, gid=50,
                          comm=b"worker-with-a-long-name",
                          memory={USER_TEXT: b"from user\0", KERNEL_TEXT: b"kernel\0"},
                          task={"se.vruntime": 123456})
    seen = run(load_host(Compilation("ext.py", TASK), process=process))
    assert (seen.pid_tgid, seen.uid_gid) == (100 << 32 | 101, 50 << 32 | 1000)
    assert seen.comm == b"worker-with-a-l\0"  # TASK_COMM_LEN, NUL included
    assert seen.task_comm == b"worker-with-a-l\0"
    assert (seen.parent, seen.vruntime) == (7, 123456)
    assert (seen.text, seen.kernel_text) == (b"from us\0", b"kernel\0\0")


def test_the_default_process_is_this_thread() -> None:
    seen = run(load_host(Compilation("ext.py", TASK)))
    assert seen.pid_tgid >> 32 == os.getpid() and seen.parent == os.getppid()
    assert seen.uid_gid == os.getgid() << 32 | os.getuid()
    # Memory it was not shown reads as the helpers' failure: an empty string.
    assert seen.text == seen.kernel_text == bytes(8)


def test_memory_for_one_run_and_the_wrong_address_space() -> None:
    ext = load_host(Compilation("ext.py", TASK))
    seen = run(ext, memory={USER_TEXT: b"once\0"})
    assert seen.text == b"once\0\0\0\0"
    assert run(ext).text == bytes(8)  # the extension's process is back
    # A kernel read of user memory and a user read of kernel memory both fail.
    seen = run(ext, user=KERNEL_TEXT, kernel=USER_TEXT,
               memory={USER_TEXT: b"user\0", KERNEL_TEXT: b"kernel\0"})
    assert seen.text == seen.kernel_text == bytes(8)


def test_a_string_running_into_unmapped_memory_faults() -> None:
    ext = load_host(Compilation("ext.py", TASK))
    assert run(ext, memory={USER_TEXT: b"no nul"}).text == bytes(8)
    assert run(ext, memory={USER_TEXT: b"no nul but long enough"}).text == b"no nul \0"


def test_fake_memory_joins_adjacent_regions() -> None:
    memory = FakeMemory({0x1000: b"abcd", 0x1004: b"efgh", 0x2000: b"x"})
    assert memory.read(0x1002, 4) == b"cdef"
    assert memory.read(0x1006, 4) is None
    assert (memory.readable(0x1001), memory.readable(0x1fff)) == (7, 0)


def test_an_unknown_task_member_is_named() -> None:
    with pytest.raises(ValueError, match="struct task_struct has no member 'no_such'"):
        load_host(Compilation("ext.py", TASK), process=HostProcess(task={"no_such": 1}))


CRASH_STOP = """
from pykex import xdp, XdpContext, XDP_PASS, XDP_DROP

@xdp(on_error=XDP_DROP, crash_stop=True)
def guarded(ctx: XdpContext) -> int:
    assert ctx.packet[0] == 0, "poisoned"
    return XDP_PASS

@xdp(on_error=XDP_DROP, crash_stop=True)
def other(ctx: XdpContext) -> int:
    assert ctx.packet[0] == 0, "poisoned"
    return XDP_PASS

@xdp()
def plain(ctx: XdpContext) -> int:
    return XDP_PASS
"""


def test_reenable_clears_one_program_and_refuses_others() -> None:
    ext = load_host(Compilation("ext.py", textwrap.dedent(CRASH_STOP)))
    for program in (ext.guarded, ext.other):
        assert program.test_run(b"\x01" + bytes(13)).retval == 1  # XDP_DROP
    ext.guarded.reenable()
    flags = ext.maps[".data.disabled"][0]
    assert (flags.guarded, flags.other) == (0, 1)
    with pytest.raises(TypeError, match="'plain' is not declared crash_stop=True"):
        ext.plain.reenable()
