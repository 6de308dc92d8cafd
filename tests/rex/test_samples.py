"""Rex's samples, ported (examples/rex/): each runs in the kernel and in host mode.

Tracepoint programs cannot be test-run by the kernel: there they are attached
and the test makes the system calls they watch; in host mode the test hands
them the tracepoint record they would receive.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
import time

import pytest

from pykex.btf import tracepoint_format
from pykex.kernel.testrun import run_raw_tracepoint
from pykex.lang import check
from pykex.lang.contexts import pt_regs_size
from pykex.lang.prelude import XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX
from pykex.runtime import HostProcess

from .conftest import SAMPLES, modes, sample_path

SYS_GETCWD = 79
SYS_WRITE = 1


def record(group_name: str, **fields: int) -> bytes:
    """A tracepoint record with ``fields`` set (common_pid is this process)."""
    group, name = group_name.split("/")
    fmt = tracepoint_format(group, name)
    data = bytearray(max(fmt.size, 64))
    for field in fmt.fields:
        value = os.getpid() if field.name == "common_pid" else fields.get(field.name)
        if value is not None:
            data[field.offset:field.offset + field.size] = (value & (
                (1 << (8 * field.size)) - 1)).to_bytes(field.size, "little")
    return bytes(data)


def test_every_sample_checks() -> None:
    samples = sorted(SAMPLES.glob("*.py"))
    assert {p.stem for p in samples} >= {
        "hello", "map_test", "syscall_tp", "trace_event", "tracex5", "xdp_test",
        "spinlock_test", "atomic", "map_bench", "syscount", "exceptions"}
    for path in samples:
        assert check(path) == [], path


@pytest.mark.parametrize("mode", modes())
def test_hello(open_extension, mode: str) -> None:
    ext = open_extension(sample="hello")
    if mode == "kernel":
        libc = ctypes.CDLL(None, use_errno=True)  # os.dup() calls fcntl(), not dup()
        with ext.hello.attach():
            for _ in range(3):
                os.close(libc.dup(1))
    else:
        for _ in range(3):
            ext.hello.test_run(ctx=record("syscalls/sys_enter_dup", fildes=1))
        assert ext.trace == [f"pykex prog: PID = {os.getpid()} fd = 1"] * 3
    assert ext.calls[os.getpid()] >= 3


@pytest.mark.parametrize("mode", modes())
def test_map_test(open_extension) -> None:
    ext = open_extension(sample="map_test")
    run = ext.programs["maps"].test_run

    def op(operation: int, key: int, value: int = 0) -> int:
        return run(bytes([operation, key, value]) + bytes(13)).retval

    assert op(0, 3, 30) == XDP_PASS
    assert op(1, 3, 5) == XDP_PASS
    assert (ext.hashed[3], ext.recent[3], ext.table[3]) == (35, 30, 35)
    assert ext.per_cpu.sum(3) == 35 and ext.per_cpu_table.sum(3) == 35
    assert op(3, 3, 35) == XDP_PASS and op(3, 3, 34) == XDP_DROP and op(3, 4) == XDP_DROP
    assert op(2, 3) == XDP_PASS
    assert 3 not in ext.hashed and 3 not in ext.recent
    failed = run(bytes([2, 3, 0]) + bytes(13))  # deleting again: KeyError
    assert (failed.retval, failed.exception.kind) == (XDP_DROP, "KeyError")
    for key in range(8):  # the LRU map keeps the 4 most recent keys
        op(0, key, key)
    assert len(ext.recent) == 4
    ext.routes[(24, b"\x0a\x00\x00\x00")] = 7
    assert op(4, 200) == 7
    ext.routes[(32, b"\x0a\x00\x00\xc8")] = 9
    assert op(4, 200) == 9 and op(4, 201) == 7


@pytest.mark.parametrize("mode", modes())
def test_syscall_tp(open_extension, mode: str) -> None:
    ext = open_extension(sample="syscall_tp")
    if mode == "kernel":
        with ext.enter.attach(), ext.leave.attach():
            for _ in range(3):
                os.getcwd()
    else:
        for _ in range(3):
            ext.enter.test_run(ctx=record("syscalls/sys_enter_getcwd"))
            ext.leave.test_run(ctx=record("syscalls/sys_exit_getcwd",
                                          ret=len(os.getcwd()) + 1))
    calls = ext.stats[os.getpid()]
    assert calls.entered == calls.exited == 3
    assert calls.last_result == len(os.getcwd()) + 1


# What host mode samples: this process, on made-up kernel and user stacks.
SAMPLED = HostProcess.current(kernel_stack=(0xFFFFFFFF81A01234, 0xFFFFFFFF81000F00),
                              user_stack=(0x5555_5555_1234, 0x5555_5555_0F00))


def perf_sample(period: int) -> bytes:
    """The bpf_perf_event_data of a sample: the registers, the period, no address."""
    return bytes(pt_regs_size()) + struct.pack("<QQ", period, 0)


@pytest.mark.parametrize("mode", modes())
def test_trace_event(open_extension, mode: str) -> None:
    ext = open_extension(sample="trace_event", process=SAMPLED)
    if mode == "kernel":
        with ext.sample.attach(frequency=499):
            deadline = time.monotonic() + 0.4
            while time.monotonic() < deadline:
                pass
    else:  # the kernel cannot test-run perf event programs; host mode can
        for _ in range(50):
            assert ext.sample.test_run(ctx=perf_sample(2_000_000)).exception is None
    mine = {key: count for key, count in ext.counts.items()
            if key.comm.rstrip(b"\0") in (b"python", b"pytest", b"python3")}
    assert sum(mine.values()) >= 20
    assert any(key.user_stack >= 0 for key in mine)
    key = next(k for k in mine if k.user_stack >= 0)
    assert ext.stacks[key.user_stack][0] != 0


@pytest.mark.parametrize("mode", modes())
def test_tracex5(open_extension, mode: str) -> None:
    ext = open_extension(sample="tracex5")
    read_end, write_end = os.pipe()
    try:
        if mode == "kernel":
            with ext.on_write.attach(), ext.on_read.attach(), ext.on_mmap.attach():
                os.write(write_end, b"hello")
                os.read(read_end, 3)
        else:
            ext.on_write.test_run(ctx=record("syscalls/sys_enter_write", fd=write_end,
                                             buf=0x1000, count=5))
            ext.on_read.test_run(ctx=record("syscalls/sys_enter_read", fd=read_end,
                                            buf=0x2000, count=3))
    finally:
        os.close(read_end)
        os.close(write_end)
    write = ext.last[os.getpid() << 8 | SYS_WRITE]
    read = ext.last[os.getpid() << 8 | 0]
    assert (write.first, write.third) == (write_end, 5) and write.second != 0
    assert (read.first, read.third) == (read_end, 3)


def _udp_frame(dport: int) -> bytes:
    eth = bytes.fromhex("020000000002" "020000000001" "0800")
    ip = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    udp = struct.pack(">HHHH", 5000, dport, 8, 0)
    return eth + ip + udp + bytes(8)


@pytest.mark.parametrize("mode", modes())
def test_xdp_test(open_extension) -> None:
    ext = open_extension(sample="xdp_test")
    ext.blocked_ports[9] = 1
    assert ext.xdp_filter.test_run(_udp_frame(53)).retval == XDP_PASS
    assert ext.xdp_filter.test_run(_udp_frame(9)).retval == XDP_DROP
    echoed = ext.xdp_filter.test_run(_udp_frame(7))
    assert echoed.retval == XDP_TX
    frame = echoed.packet
    assert frame[0:6] == bytes.fromhex("020000000001") and frame[6:12] == bytes.fromhex(
        "020000000002")
    assert frame[26:30] == bytes([10, 0, 0, 2]) and frame[30:34] == bytes([10, 0, 0, 1])
    assert struct.unpack(">HH", frame[34:38]) == (7, 5000)
    short = ext.xdp_filter.test_run(_udp_frame(53)[:30])
    assert short.exception.kind == "IndexError"
    assert [f.function for f in short.exception.frames] == ["xdp_filter", "verdict"]
    assert (ext.stats[XDP_PASS], ext.stats[XDP_DROP], ext.stats[XDP_TX]) == (1, 1, 1)


@pytest.mark.parametrize("mode", modes())
def test_spinlock_test(open_extension) -> None:
    ext = open_extension(sample="spinlock_test")
    assert ext.update.test_run(bytes(64)).retval == XDP_PASS
    poisoned = ext.update.test_run(b"\xff" + bytes(99))
    assert poisoned.retval == XDP_ABORTED
    assert poisoned.exception.headline == "ValueError: poisoned packet; balance now 164"
    assert [f.function for f in poisoned.exception.frames] == ["update", "deposit"]
    # The lock was released on the way out: this run takes it again.
    assert ext.update.test_run(bytes(36)).retval == XDP_PASS
    account = ext.accounts[0]
    assert (account.balance, account.packets) == (200, 2)


RUNS_PER_CPU = 20000


@pytest.mark.kernel
def test_atomic_counters_from_both_cpus() -> None:
    from pykex.runtime import load

    cpus = sorted(os.sched_getaffinity(0))[:2]
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    with load(sample_path("atomic")) as ext:
        start = threading.Barrier(len(cpus))

        def hammer(cpu: int) -> None:
            start.wait()
            for _ in range(RUNS_PER_CPU):
                run_raw_tracepoint(ext.bump.program, [3], cpu=cpu)

        threads = [threading.Thread(target=hammer, args=(cpu,)) for cpu in cpus]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counters = ext.counters[0]
    expected = 3 * RUNS_PER_CPU
    assert counters.atomic == expected * len(cpus)
    assert [counters.by_cpu[cpu] for cpu in cpus] == [expected] * len(cpus)
    assert counters.plain <= expected * len(cpus)  # lost updates are possible here


def test_atomic_in_host_mode() -> None:
    from pykex.runtime import load_host

    for cpu in (0, 1):
        ext = load_host(sample_path("atomic"), cpu=cpu)
        for _ in range(5):
            ext.bump.test_run(ctx=struct.pack("<Q", 3) + bytes(88))
        counters = ext.counters[0]
        assert (counters.atomic, counters.plain, counters.by_cpu[cpu]) == (15, 15, 15)


@pytest.mark.parametrize("mode", modes())
def test_map_bench(open_extension, mode: str) -> None:
    ext = open_extension(sample="map_bench")
    repeat = 100
    for program in (ext.bench_hash, ext.bench_array):
        result = program.test_run(bytes(64), repeat=repeat)
        assert result.retval == XDP_PASS
        if mode == "kernel":
            assert result.duration_ns > 0  # the figure the benchmark reports
    assert ext.hashed[5] == ext.table[5] == repeat


@pytest.mark.parametrize("mode", modes())
def test_syscount(open_extension, mode: str) -> None:
    ext = open_extension(sample="syscount")
    if mode == "kernel":
        with ext.enter.attach(), ext.leave.attach():
            for _ in range(5):
                os.getcwd()
            with pytest.raises(FileNotFoundError):
                os.stat("/nonexistent/pykex")
    else:
        for _ in range(5):
            ext.enter.test_run(ctx=record("raw_syscalls/sys_enter", id=SYS_GETCWD))
            ext.leave.test_run(ctx=record("raw_syscalls/sys_exit", id=SYS_GETCWD, ret=10))
        ext.enter.test_run(ctx=record("raw_syscalls/sys_enter", id=262))
        ext.leave.test_run(ctx=record("raw_syscalls/sys_exit", id=262, ret=-2))
    getcwd = ext.syscalls[SYS_GETCWD]
    assert getcwd.count >= 5 and getcwd.latency_ns > 0
    assert sum(stats.errors for stats in ext.syscalls.values()) >= 1


@pytest.mark.parametrize("mode", modes())
def test_exceptions(open_extension) -> None:
    ext = open_extension(sample="exceptions")
    ext.limits[4] = 100

    def run(*data: int):
        return ext.guarded.test_run(bytes(data) + bytes(16 - len(data)))

    assert run(0).retval == XDP_PASS
    assert run(4, 4).exception is None
    cases = {
        1: ("IndexError: packet offset 14 + 20 > length 16",
            ["guarded", "check_packet", "header_checksum"]),
        2: ("ZeroDivisionError: integer division or modulo by zero",
            ["guarded", "check_packet", "ratio"]),
        3: ("AssertionError: byte 1 must be even", ["guarded", "check_packet"]),
        4: ("KeyError: key 5 not in map limits", ["guarded", "check_packet"]),
        5: ("ValueError: refused packet of length 16 5", ["guarded", "check_packet"]),
    }
    for kind, (headline, functions) in cases.items():
        result = run(kind, 0 if kind == 2 else 5)
        assert result.retval == XDP_DROP
        assert result.exception.headline == headline
        assert [f.function for f in result.exception.frames] == functions
        assert str(result.exception).startswith("Traceback (most recent call last):\n")
    counts = ext.exceptions()
    assert counts["guarded"] == len(cases)
    assert len(counts.by_site) == len(cases)
