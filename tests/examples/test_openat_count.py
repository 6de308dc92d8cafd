"""examples/openat_count.py: openat(2) calls counted per process.

In the kernel a forked child calls openat exactly N times and exits; in host
mode the program runs N times on a sys_enter_openat record (the interpreter's
current process is the test's own).
"""

from __future__ import annotations

import os

import pytest

from pykex.btf import BTFError, tracepoint_format

OPENS = 37


def openat_in_a_child(count: int) -> int:
    """Fork a child that opens /dev/null ``count`` times and exits; return its pid."""
    pid = os.fork()
    if pid == 0:  # the child: nothing but the calls being counted, then out
        try:
            for _ in range(count):
                os.close(os.open("/dev/null", os.O_RDONLY))
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid


def openat_record() -> bytes:
    """A zeroed sys_enter_openat record of this kernel's size."""
    try:
        layout = tracepoint_format("syscalls", "sys_enter_openat")
    except BTFError as missing:
        pytest.skip(f"no syscalls tracepoints here: {missing}")
    return bytes(layout.size)


def test_counts_per_process(open_example, mode: str) -> None:
    ext = open_example("openat_count")
    if mode == "kernel":
        with ext.count_openat.attach():
            process = openat_in_a_child(OPENS)
            idle = openat_in_a_child(0)
        after_detach = openat_in_a_child(5)
        assert idle not in ext.calls
        assert after_detach not in ext.calls
    else:
        assert ext.count_openat.test_run(ctx=openat_record(), repeat=OPENS).retval == 0
        process = os.getpid()
    assert ext.calls[process].count == OPENS
    assert ext.exceptions().total == 0
