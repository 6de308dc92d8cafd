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
from .link import (
    Link,
    attach_cgroup,
    attach_kprobe,
    attach_perf_event,
    attach_raw_tracepoint,
    attach_socket_filter,
    attach_tcx,
    attach_tracepoint,
    attach_uprobe,
    attach_xdp,
)
from .maps import (
    ArrayMap,
    HashMap,
    LpmKey,
    LpmTrieMap,
    LruHashMap,
    LruPerCpuHashMap,
    Map,
    PerCpuArrayMap,
    PerCpuHashMap,
    PerfEventArrayMap,
    ProgArrayMap,
    QueueMap,
    RingBufMap,
    StackMap,
    StackTraceMap,
)
from .perfbuf import PerfBuffer
from .program import MapRelocation, Program, ProgramInfo
from .ringbuf import RingBuffer, RingBufferReader
from .syscall import TestRunResult, btf_load, enable_stats
from .tracepipe import TracePipe
from .uapi import AttachType, LinkType, MapType, ProgType


def load_btf(data: bytes, log_level: int = 0) -> FD:
    """Load raw BTF into the kernel; the returned FD keeps it alive."""
    return btf_load(data, log_level)


__all__ = [
    "FD",
    "ArrayMap",
    "AttachType",
    "BPFError",
    "BTFLoadError",
    "HashMap",
    "KeyNotFoundError",
    "Link",
    "LinkType",
    "LpmKey",
    "LpmTrieMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "Map",
    "MapRelocation",
    "MapType",
    "NotSupportedError",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "PerfBuffer",
    "PerfEventArrayMap",
    "PermissionDeniedError",
    "ProgArrayMap",
    "ProgType",
    "Program",
    "ProgramInfo",
    "QueueMap",
    "RingBufMap",
    "RingBuffer",
    "RingBufferReader",
    "StackMap",
    "StackTraceMap",
    "TestRunResult",
    "TracePipe",
    "VerifierError",
    "attach_cgroup",
    "attach_kprobe",
    "attach_perf_event",
    "attach_raw_tracepoint",
    "attach_socket_filter",
    "attach_tcx",
    "attach_tracepoint",
    "attach_uprobe",
    "attach_xdp",
    "enable_stats",
    "ensure_bpffs",
    "load_btf",
    "pin_path",
]
