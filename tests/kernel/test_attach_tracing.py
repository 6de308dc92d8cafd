"""Tracepoints, raw tracepoints, sampling perf events, uprobes and kprobes."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from pykex.elf.symbols import SymbolNotFoundError
from pykex.kernel import NotSupportedError, ProgType, syscall
from pykex.kernel.cpus import online_cpus, parse_cpu_list
from pykex.kernel.link import (
    TracepointNotFoundError,
    attach_kprobe,
    attach_perf_event,
    attach_raw_tracepoint,
    attach_tracepoint,
    attach_uprobe,
)
from pykex.kernel.uapi import Cmd, LinkType

from .conftest import Target, array_map, counter, counting_program, pid_counting_program

pytestmark = pytest.mark.kernel

KPROBE_PMU = Path("/sys/bus/event_source/devices/kprobe")


def test_tracepoint_counts_openat_of_one_process(start_target, tmp_path: Path) -> None:
    opens = 13
    target_file = tmp_path / "opened"
    target_file.write_text("x")
    target: Target = start_target("open", str(target_file), str(opens))
    counts = array_map()
    with pid_counting_program(ProgType.TRACEPOINT, counts, target.pid) as prog:
        with attach_tracepoint(prog, "syscalls/sys_enter_openat") as link:
            info = link.info()
            assert info.type is LinkType.PERF_EVENT
            assert info.perf_event == "tracepoint"
            assert info.tracepoint == "sys_enter_openat"
            assert info.prog_id == prog.info().id
            target.go()
        assert counter(counts) == opens


def test_tracepoint_without_perf_links_falls_back_to_ioctl(start_target) -> None:
    """On kernels before 5.15, LINK_CREATE rejects perf events with EINVAL."""
    calls = 5
    target: Target = start_target("getppid", str(calls))
    counts = array_map()
    real = syscall._kernel_backend

    def kernel_without_perf_links(cmd: int, attr: object) -> int:
        if cmd == Cmd.LINK_CREATE:
            return -errno.EINVAL
        return real(cmd, attr)  # type: ignore[arg-type]

    with pid_counting_program(ProgType.TRACEPOINT, counts, target.pid) as prog:
        with syscall.override_backend(kernel_without_perf_links):
            link = attach_tracepoint(prog, "syscalls/sys_enter_getppid")
        with link:
            assert "(ioctl)" in link.description
            with pytest.raises(ValueError, match="cannot be pinned"):
                link.pin("never")
            target.go()
        assert counter(counts) == calls


def test_unknown_tracepoint_is_named() -> None:
    counts = array_map()
    with counting_program(ProgType.TRACEPOINT, counts) as prog:
        with pytest.raises(TracepointNotFoundError, match="no tracepoint 'syscalls/sys_enter_no'"):
            attach_tracepoint(prog, "syscalls/sys_enter_no")
        with pytest.raises(ValueError, match="group/name"):
            attach_tracepoint(prog, "sys_enter_openat")
    with (
        counting_program(ProgType.RAW_TRACEPOINT, counts) as prog,
        pytest.raises(TracepointNotFoundError, match="no tracepoint 'pkx_nope'"),
    ):
        attach_raw_tracepoint(prog, "pkx_nope")


def test_raw_tracepoint_counts_one_syscall_of_one_process(start_target) -> None:
    calls = 9
    target: Target = start_target("getppid", str(calls))
    counts = array_map()
    prog = pid_counting_program(
        ProgType.RAW_TRACEPOINT, counts, target.pid, syscall_number=target.getppid_number
    )
    with prog, attach_raw_tracepoint(prog, "sys_enter") as link:
        info = link.info()
        assert info.type is LinkType.RAW_TRACEPOINT
        assert info.tracepoint == "sys_enter"
        target.go()
    assert counter(counts) == calls


def test_perf_event_samples_every_cpu() -> None:
    counts = array_map()
    with counting_program(ProgType.PERF_EVENT, counts) as prog:
        with attach_perf_event(prog, frequency=1000) as link:
            assert len(link.ids) == len(online_cpus())
            info = link.info()
            assert info.type is LinkType.PERF_EVENT and info.perf_event == "event"
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                pass
        samples = counter(counts)
        assert samples > 0
        time.sleep(0.05)
        assert counter(counts) == samples  # detached: no more samples


def test_perf_event_arguments_are_checked() -> None:
    counts = array_map()
    with counting_program(ProgType.PERF_EVENT, counts) as prog:
        with pytest.raises(ValueError, match="either frequency"):
            attach_perf_event(prog)
        with pytest.raises(ValueError, match="either frequency"):
            attach_perf_event(prog, frequency=10, period=10)
        with pytest.raises(ValueError, match="unknown event 'cycles-of-doom'"):
            attach_perf_event(prog, period=1000, event="cycles-of-doom")


@pytest.mark.parametrize("retprobe", [False, True], ids=["uprobe", "uretprobe"])
def test_uprobe_counts_calls(start_target, target_binary: Path, retprobe: bool) -> None:
    calls = 17
    counts = array_map()
    with counting_program(ProgType.KPROBE, counts) as prog:
        link = attach_uprobe(prog, str(target_binary), "pkx_probed", retprobe=retprobe)
        with link:
            assert link.info().perf_event == ("uretprobe" if retprobe else "uprobe")
            start_target("call", str(calls)).go()
        assert counter(counts) == calls
        start_target("call", "3").go()
        assert counter(counts) == calls


def test_uprobe_filtered_to_one_process(start_target, target_binary: Path) -> None:
    counts = array_map()
    watched: Target = start_target("call", "4")
    other: Target = start_target("call", "6")
    with (
        counting_program(ProgType.KPROBE, counts) as prog,
        attach_uprobe(prog, str(target_binary), "pkx_probed", pid=watched.pid),
    ):
        other.go()
        watched.go()
    assert counter(counts) == 4


def test_uprobe_unknown_symbol_is_named(target_binary: Path) -> None:
    counts = array_map()
    message = f"symbol 'pkx_absent' not found in {target_binary}"
    with (
        counting_program(ProgType.KPROBE, counts) as prog,
        pytest.raises(SymbolNotFoundError, match=message),
    ):
        attach_uprobe(prog, str(target_binary), "pkx_absent")


@pytest.mark.skipif(not KPROBE_PMU.exists(), reason="kprobes (CONFIG_KPROBES) not in this kernel")
def test_kprobe_counts_calls(tmp_path: Path) -> None:
    opened = tmp_path / "opened"
    opened.write_text("x")
    counts = array_map()
    with counting_program(ProgType.KPROBE, counts) as prog:
        with attach_kprobe(prog, "do_sys_openat2") as link:
            assert link.info().perf_event == "kprobe"
            for _ in range(5):
                opened.read_text()
        assert counter(counts) >= 5


@pytest.mark.skipif(KPROBE_PMU.exists(), reason="this kernel has kprobes")
def test_kprobe_absence_is_reported() -> None:
    counts = array_map()
    with (
        counting_program(ProgType.KPROBE, counts) as prog,
        pytest.raises(NotSupportedError) as caught,
    ):
        attach_kprobe(prog, "do_sys_openat2")
    assert caught.value.feature == "kprobes (CONFIG_KPROBES)"
    assert "kprobes (CONFIG_KPROBES)" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0", [0]), ("0-3", [0, 1, 2, 3]), ("0-1,4,6-7\n", [0, 1, 4, 6, 7]), ("", [])],
)
def test_cpu_lists(text: str, cpus: list[int]) -> None:
    assert parse_cpu_list(text) == cpus
