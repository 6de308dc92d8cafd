"""Locating (and if need be mounting) tracefs.

Tracepoint formats, tracepoint ids for perf-event attach and ``trace_pipe``
all live in tracefs. A fresh machine may not have it mounted, so
:func:`tracefs_root` mounts it at its standard place when no mount exists,
and otherwise returns the existing mount untouched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

TRACEFS_MOUNT_POINT = Path("/sys/kernel/tracing")
PROC_MOUNTS = Path("/proc/self/mounts")


def _unescape_mount_field(field: str) -> str:
    # /proc/self/mounts escapes space, tab, newline and backslash as octal (\040 ...).
    return field.encode().decode("unicode_escape") if "\\" in field else field


def tracefs_mounts() -> list[Path]:
    """Every place tracefs is mounted in this process's mount namespace."""
    found = []
    for line in PROC_MOUNTS.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "tracefs":
            found.append(Path(_unescape_mount_field(fields[1])))
    return found


def tracefs_root() -> Path:
    """The tracefs root, mounting tracefs at ``/sys/kernel/tracing`` if it is mounted nowhere.

    Prefers the standard mount point when tracefs is mounted in several
    places. Mounting needs CAP_SYS_ADMIN; failure raises ``OSError`` naming
    the mount point.
    """
    mounts = tracefs_mounts()
    if TRACEFS_MOUNT_POINT in mounts:
        return TRACEFS_MOUNT_POINT
    if mounts:
        return mounts[0]
    _mount_tracefs(TRACEFS_MOUNT_POINT)
    return TRACEFS_MOUNT_POINT


def _mount_tracefs(target: Path) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
    ]
    if libc.mount(b"tracefs", os.fsencode(target), b"tracefs", 0, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot mount tracefs: {os.strerror(errno)}", str(target))
