"""pykex.kernel: the kernel interface, in pure Python over bpf(2).

No libbpf underneath: :mod:`.syscall` is the one entry point into bpf(2),
:mod:`.uapi` writes down the ABI, and the modules around them give Python
objects that own kernel objects (programs, maps, links, ring buffers).
"""

from __future__ import annotations

from .errors import (
    BPFError,
    BTFLoadError,
    KeyNotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    VerifierError,
)
from .fd import FD
from .fs import ensure_bpffs, pin_path
from .program import MapRelocation, Program, ProgramInfo
from .syscall import TestRunResult, btf_load, enable_stats
from .uapi import AttachType, LinkType, MapType, ProgType


def load_btf(data: bytes, log_level: int = 0) -> FD:
    """Load raw BTF into the kernel; the returned FD keeps it alive."""
    return btf_load(data, log_level)


__all__ = [
    "FD",
    "AttachType",
    "BPFError",
    "BTFLoadError",
    "KeyNotFoundError",
    "LinkType",
    "MapRelocation",
    "MapType",
    "NotSupportedError",
    "PermissionDeniedError",
    "ProgType",
    "Program",
    "ProgramInfo",
    "TestRunResult",
    "VerifierError",
    "enable_stats",
    "ensure_bpffs",
    "load_btf",
    "pin_path",
]
