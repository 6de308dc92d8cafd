"""The special file systems BPF objects live in: bpffs for pins.

A fresh machine may not have bpffs mounted at /sys/fs/bpf; pinning mounts it
on demand and leaves an existing mount alone.
"""

from __future__ import annotations

import ctypes
import os

BPFFS_ROOT = "/sys/fs/bpf"
_BPF_FS_MAGIC = 0xCAFE4A11

_libc = ctypes.CDLL(None, use_errno=True)


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15)]


def fs_magic(path: str) -> int:
    """The ``f_type`` of the file system holding ``path`` (statfs(2))."""
    buf = _StatFs()
    if _libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"statfs {path}: {os.strerror(err)}")
    return buf.f_type & 0xFFFFFFFF


def mount(source: str, target: str, fstype: str, options: str = "") -> None:
    """mount(2), with a message that names the file system on failure."""
    data = options.encode() if options else None
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), 0, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot mount {fstype} at {target}: {os.strerror(err)}")


def is_bpffs(path: str) -> bool:
    try:
        return fs_magic(path) == _BPF_FS_MAGIC
    except OSError:
        return False


def ensure_bpffs(root: str = BPFFS_ROOT) -> str:
    """Make sure bpffs is mounted at ``root`` (mounting it if needed); return ``root``."""
    if not is_bpffs(root):
        os.makedirs(root, exist_ok=True)
        mount("bpf", root, "bpf", "mode=0700")
    return root


def pin_path(name: str, root: str = BPFFS_ROOT) -> str:
    """An absolute pin path for ``name``; relative names go under bpffs."""
    if os.path.isabs(name):
        return name
    return os.path.join(ensure_bpffs(root), name)
