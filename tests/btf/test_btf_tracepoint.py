"""Tracepoint formats: inline text and the live tracefs files."""

import subprocess
import sys
import textwrap

import pytest

from pykex.btf import (
    BTFNotFoundError,
    TracepointFormatError,
    parse_format,
    tracefs_root,
    tracepoint_format,
)
from pykex.btf.tracefs import TRACEFS_MOUNT_POINT, tracefs_mounts

SCHED_SWITCH = textwrap.dedent(
    """\
    name: sched_switch
    ID: 372
    format:
    \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
    \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
    \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
    \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

    \tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
    \tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;
    \tfield:__data_loc char[] reason;\toffset:28;\tsize:4;\tsigned:0;
    \tfield:__rel_loc u8[] blob;\toffset:32;\tsize:4;\tsigned:0;
    \tfield:const char * filename;\toffset:40;\tsize:8;\tsigned:0;
    \tfield:unsigned long caller[TRACE_DEPTH];\toffset:48;\tsize:64;\tsigned:0;

    print fmt: "prev_comm=%s prev_pid=%d", REC->prev_comm, REC->prev_pid
    """
)


def test_inline_format() -> None:
    fmt = parse_format(SCHED_SWITCH, "sched")
    assert (fmt.group, fmt.name, fmt.id) == ("sched", "sched_switch", 372)
    assert [f.name for f in fmt.common_fields] == [
        "common_type",
        "common_flags",
        "common_preempt_count",
        "common_pid",
    ]
    assert fmt.field("common_pid").signed
    comm = fmt.field("prev_comm")
    assert (comm.c_type, comm.array_length, comm.offset, comm.size) == ("char", 16, 8, 16)
    reason = fmt.field("reason")
    assert (reason.c_type, reason.dynamic, reason.array_length) == ("char[]", "data_loc", None)
    assert reason.locate(0x0005_0040) == (0x40, 5)
    blob = fmt.field("blob")
    assert blob.dynamic == "rel_loc" and blob.locate(0x0003_0010) == (32 + 4 + 0x10, 3)
    assert fmt.field("filename").c_type == "const char *"
    caller = fmt.field("caller")
    assert caller.c_type == "unsigned long" and caller.array_length is None
    assert fmt.size == 112
    assert fmt.print_fmt.startswith('"prev_comm=%s')
    with pytest.raises(TracepointFormatError, match="not a dynamic array"):
        comm.locate(0)
    with pytest.raises(BTFNotFoundError):
        fmt.field("next_comm")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nformat:\n\tfield:int a;\toffset:0;\tsize:4;\tsigned:1;\n", "no ID"),
        ("name: x\nID: 1\nformat:\n", "no fields"),
        ("name: x\nID: one\n", "bad event id"),
        ("name: x\nID: 1\nformat:\n\tfield:int a;\toffset:zero;\tsize:4;\n", "numeric offset"),
        ("name: x\nID: 1\nformat:\n\tfield:;\toffset:0;\tsize:4;\n", "cannot parse"),
        ("name: x\nID: 1\nformat:\n\tgarbage\n", "unexpected"),
    ],
)
def test_malformed_formats(text: str, message: str) -> None:
    with pytest.raises(TracepointFormatError, match=message):
        parse_format(text)


@pytest.mark.kernel
def test_sys_enter_openat() -> None:
    fmt = tracepoint_format("syscalls", "sys_enter_openat")
    assert fmt.id > 0
    assert [f.name for f in fmt.event_fields] == [
        "__syscall_nr",
        "dfd",
        "filename",
        "flags",
        "mode",
    ]
    filename = fmt.field("filename")
    assert (filename.c_type, filename.offset, filename.size) == ("const char *", 24, 8)
    assert fmt.field("__syscall_nr").signed
    assert (
        str(fmt.id) == (tracefs_root() / "events/syscalls/sys_enter_openat/id").read_text().strip()
    )


@pytest.mark.kernel
def test_sched_process_exec_has_data_loc_filename() -> None:
    fmt = tracepoint_format("sched", "sched_process_exec")
    filename = fmt.field("filename")
    assert filename.dynamic == "data_loc" and filename.c_type == "char[]" and filename.size == 4
    assert fmt.field("pid").c_type == "pid_t" and fmt.field("pid").signed
    assert len(fmt.common_fields) == 4


@pytest.mark.kernel
def test_missing_tracepoint() -> None:
    with pytest.raises(BTFNotFoundError, match="no tracepoint"):
        tracepoint_format("sched", "no_such_event")
    with pytest.raises(BTFNotFoundError, match="not a tracepoint name"):
        tracepoint_format("..", "x")


@pytest.mark.kernel
def test_existing_mount_is_left_alone() -> None:
    root = tracefs_root()
    before = tracefs_mounts()
    assert tracefs_root() == root
    assert tracefs_mounts() == before
    assert (root / "events").is_dir()


MOUNT_PROBE = """
import subprocess
from pykex.btf.tracefs import tracefs_mounts, tracefs_root
for mount in reversed(tracefs_mounts()):
    subprocess.run(["umount", str(mount)], check=True)
assert tracefs_mounts() == []
root = tracefs_root()
assert tracefs_mounts() == [root], tracefs_mounts()
print(root, (root / "events" / "sched").is_dir())
"""


@pytest.mark.kernel
def test_mounts_tracefs_when_absent() -> None:
    # A private mount namespace, so unmounting there leaves this machine's tracefs alone.
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", MOUNT_PROBE],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(TRACEFS_MOUNT_POINT), "True"]
