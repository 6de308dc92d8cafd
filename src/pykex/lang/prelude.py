"""The names an extension imports from ``pykex``.

They are ordinary Python objects, so editors, ruff and mypy understand an
extension and CPython can import it. The compiler never runs them: it
recognises each name by where it was imported from and gives it the meaning
documented in docs/language.md. Where CPython can do what the name means
(maps as dictionaries, a packet as a bytearray, verdict constants), the
object does it, which helps unit-testing pure logic; kernel-only behaviour
(per-CPU storage, atomics across CPUs) is described, not emulated.

``ArrayMap`` is the eBPF array map; it is not called ``Array`` because
``Array[T, N]`` is the fixed-size array type of :mod:`pykex.layout`.
"""

from __future__ import annotations

import os
import random
import threading
import time
import typing
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from pykex.layout import (
    Array,
    Bytes,
    Int,
    Struct,
    be16,
    be32,
    be64,
    bool_,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
)

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# -- verdicts --------------------------------------------------------------------

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = 0, 1, 2, 3, 4

TC_ACT_UNSPEC = -1
TC_ACT_OK = 0
TC_ACT_RECLASSIFY = 1
TC_ACT_SHOT = 2
TC_ACT_PIPE = 3
TC_ACT_STOLEN = 4
TC_ACT_QUEUED = 5
TC_ACT_REPEAT = 6
TC_ACT_REDIRECT = 7


# Socket filters return how many bytes of the packet to keep; cgroup skb programs
# return whether the packet may pass.
SK_DROP, SK_PASS = 0, 1

# bpf_get_stackid flags (``include/uapi/linux/bpf.h``).
BPF_F_USER_STACK = 1 << 8
BPF_F_FAST_STACK_CMP = 1 << 9
BPF_F_REUSE_STACKID = 1 << 10

# -- exceptions --------------------------------------------------------------------


class TerminationError(Exception):
    """A loop ran out of the kernel's time budget (``may_goto``)."""


# -- maps ----------------------------------------------------------------------------


class _KeyedMap(Generic[K, V]):
    """A map with keys: a dictionary in CPython, a kernel map when compiled."""

    def __init__(self, *, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._items: dict[Any, V] = {}

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __setitem__(self, key: K, value: V) -> None:
        if key not in self._items and len(self._items) >= self.max_entries:
            raise MemoryError(f"map is full ({self.max_entries} entries)")
        self._items[key] = value

    def __delitem__(self, key: K) -> None:
        del self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def setdefault(self, key: K, value: V) -> V:
        if key not in self._items:
            self[key] = value
        return self._items[key]


class HashMap(_KeyedMap[K, V]):
    """``HashMap[K, V](max_entries=N)``: BPF_MAP_TYPE_HASH."""


class LruHashMap(_KeyedMap[K, V]):
    """``LruHashMap[K, V](max_entries=N)``: BPF_MAP_TYPE_LRU_HASH (evicts, never full)."""

    def __setitem__(self, key: K, value: V) -> None:
        if key not in self._items and len(self._items) >= self.max_entries:
            del self._items[next(iter(self._items))]
        self._items[key] = value


class PerCpuHashMap(_KeyedMap[K, V]):
    """``PerCpuHashMap[K, V](max_entries=N)``: one value per CPU; code sees its CPU's."""


class LpmTrie(_KeyedMap[K, V]):
    """``LpmTrie[K, V](max_entries=N)``: longest-prefix match; ``K`` is a Struct whose
    first field is ``prefixlen: u32`` followed by the address bytes."""


class _IndexedMap(Generic[V]):
    """An array map: indexes ``0 <= i < max_entries``, every element exists (zero at first)."""

    def __init__(self, *, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._items: dict[int, V] = {}

    def _index(self, index: int) -> int:
        if not 0 <= index < self.max_entries:
            raise IndexError(index, self.max_entries)
        return index

    def __getitem__(self, index: int) -> V:
        index = self._index(index)
        if index not in self._items:
            # ``ArrayMap[V](...)`` records V on the instance once constructed.
            (value_type,) = typing.get_args(getattr(self, "__orig_class__", None)) or (int,)
            zero = value_type.zero if hasattr(value_type, "zero") else int
            self._items[index] = zero()
        return self._items[index]

    def __setitem__(self, index: int, value: V) -> None:
        self._items[self._index(index)] = value

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and 0 <= index < self.max_entries

    def get(self, index: int) -> V | None:
        if index not in self:
            return None
        return self[index]


class ArrayMap(_IndexedMap[V]):
    """``ArrayMap[V](max_entries=N)``: BPF_MAP_TYPE_ARRAY, shared by all CPUs."""


class PerCpuArray(_IndexedMap[V]):
    """``PerCpuArray[V](max_entries=N)``: one array per CPU; code sees its CPU's."""


class DevMap(_IndexedMap[V]):
    """``DevMap(max_entries=N)``: BPF_MAP_TYPE_DEVMAP, interface indexes (u32) that
    ``redirect_map(devices, i)`` sends packets to."""


class ProgramArray:
    """``ProgramArray(max_entries=N)``: BPF_MAP_TYPE_PROG_ARRAY, programs of the
    extension that ``tail_call(ctx, programs, i)`` jumps to. User space fills
    it (``ext.progs[0] = ext.parse_tcp``); code only jumps through it."""

    def __init__(self, *, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries


def tail_call(ctx: Any, programs: ProgramArray, index: int) -> None:
    """Jump to the program in slot ``index`` of ``programs`` (``bpf_tail_call``): it
    runs on the same context and its verdict is the caller's; nothing after the
    call runs. When the slot is empty (or the kernel's limit of 33 chained tail
    calls is reached) the call does nothing and execution continues after it."""
    raise TypeError("tail_call() jumps between programs in the kernel: compiled code only")


class RingBuffer:
    """``RingBuffer(size=N)``: records sent to userspace; ``size`` a power-of-two
    multiple of the page size. ``output(value)`` sends one record;
    ``with rb.reserve(T) as r:`` fills one in place and sends it when the block
    ends (and throws it away if the block raises). A record that finds the ring
    full is counted as dropped, never raised."""

    def __init__(self, *, size: int) -> None:
        self.size = size
        self.records: list[Any] = []
        self.dropped = 0

    def output(self, value: Any) -> None:
        self.records.append(value)

    def reserve(self, kind: type[T]) -> _Reservation[T]:
        return _Reservation(self, kind)


class _Reservation(Generic[T]):
    """``with rb.reserve(T) as r:`` in CPython: submitted on normal exit only."""

    def __init__(self, ring: RingBuffer, kind: type[T]) -> None:
        self.ring = ring
        self.record = kind.zero()  # type: ignore[attr-defined]

    def __enter__(self) -> T:
        return self.record  # type: ignore[no-any-return]

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.ring.records.append(self.record)


class PerfEventArray:
    """``PerfEventArray()``: BPF_MAP_TYPE_PERF_EVENT_ARRAY, one perf buffer per CPU;
    ``output(value)`` sends a record to the current CPU's buffer."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def output(self, value: Any) -> None:
        self.records.append(value)


class StackTrace:
    """``StackTrace(max_entries=N)``: BPF_MAP_TYPE_STACK_TRACE, call stacks stored
    by id; ``ctx.get_stackid(stacks)`` records the current one."""

    def __init__(self, *, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries


class SpinLock(Int, size=4):
    """A ``struct bpf_spin_lock`` field of a Struct kept in a map: ``with v.lock:``
    holds it for the block. In CPython it is a plain u32 and locks nothing."""

    # The kernel finds map-value locks by this BTF struct name.
    btf_struct = "bpf_spin_lock"


# -- contexts --------------------------------------------------------------------------


class Packet:
    """The packet a program sees; bounds-checked reads and writes."""

    def __init__(self, data: bytes | bytearray = b"") -> None:
        self.data = bytearray(data)

    def __len__(self) -> int:
        return len(self.data)

    def _check(self, offset: int, size: int) -> None:
        if offset < 0 or offset + size > len(self.data):
            raise IndexError(offset, size, len(self.data))

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> bytes: ...
    def __getitem__(self, index: int | slice) -> int | bytes:
        if isinstance(index, slice):
            start, stop = index.start or 0, index.stop
            self._check(start, stop - start)
            return bytes(self.data[start:stop])
        self._check(index, 1)
        return self.data[index]

    def __setitem__(self, index: int, value: int) -> None:
        self._check(index, 1)
        self.data[index] = value

    def read(self, offset: int, kind: type[T]) -> T:
        size = kind.size  # type: ignore[attr-defined]
        self._check(offset, size)
        return kind.unpack_from(self.data, offset)  # type: ignore[attr-defined, no-any-return]

    def write(self, offset: int, value: Any, kind: Any = None) -> None:
        kind = kind or type(value)
        self._check(offset, kind.size)
        kind.pack_into(self.data, offset, kind.check(value))


class XdpContext:
    """What an ``@xdp`` program receives: ``packet``, ``ingress_ifindex``, ``rx_queue_index``."""

    def __init__(self, data: bytes = b"", ingress_ifindex: int = 0, rx_queue_index: int = 0):
        self.packet = Packet(data)
        self.ingress_ifindex = ingress_ifindex
        self.rx_queue_index = rx_queue_index


class TcContext:
    """What a ``@tc`` program receives: ``packet`` and the ``__sk_buff`` fields
    ``len``, ``ifindex``, ``ingress_ifindex``, ``protocol``, ``mark``, ``priority``, ..."""

    def __init__(self, data: bytes = b"", **fields: int) -> None:
        self.packet = Packet(data)
        self.len = len(data)
        self.mark = self.priority = self.ifindex = self.ingress_ifindex = 0
        self.protocol = self.hash = self.tc_index = self.tc_classid = 0
        self.queue_mapping = self.pkt_type = self.vlan_tci = self.vlan_proto = 0
        for name, value in fields.items():
            setattr(self, name, value)


class TracepointContext:
    """What a ``@tracepoint`` program receives: ``ctx.<field>`` for each field of the
    tracepoint's format (typed from tracefs at build time)."""

    def __init__(self, **fields: int) -> None:
        for name, value in fields.items():
            setattr(self, name, value)

    def __getattr__(self, name: str) -> int:
        raise AttributeError(f"this tracepoint record has no field {name!r}")


class RawTracepointContext:
    """What a ``@raw_tracepoint`` program receives: ``ctx.arg(i)``, the tracepoint's
    i-th argument as a u64."""

    def __init__(self, *args: int) -> None:
        self.args = args

    def arg(self, index: int) -> int:
        return self.args[index]


class ProbeContext:
    """What ``@kprobe``, ``@kretprobe``, ``@uprobe`` and ``@uretprobe`` programs
    receive: the probed function's registers (``struct pt_regs``). ``arg(i)``
    is its i-th integer argument (0..5), ``ret()`` its return value, ``ip`` and
    ``sp`` the instruction and stack pointers, all u64."""

    def __init__(self, *args: int, ret: int = 0, ip: int = 0, sp: int = 0) -> None:
        self.args = args
        self._ret = ret
        self.ip = ip
        self.sp = sp

    def arg(self, index: int) -> int:
        return self.args[index]

    def ret(self) -> int:
        return self._ret


class PerfEventContext:
    """What a ``@perf_event`` program receives at each sample: ``sample_period``,
    ``addr``, ``ip``; ``get_stackid(stacks, user=False)`` stores the current call
    stack in a ``StackTrace`` map and gives its id."""

    def __init__(self, sample_period: int = 0, addr: int = 0, ip: int = 0) -> None:
        self.sample_period = sample_period
        self.addr = addr
        self.ip = ip

    def get_stackid(self, stacks: StackTrace, user: bool = False) -> int:
        raise TypeError("get_stackid works on compiled code only")


class SkbContext:
    """What ``@socket_filter`` and ``@cgroup_skb`` programs receive: ``packet`` (read
    only) and the ``__sk_buff`` fields ``len``, ``protocol``, ``ifindex``, ``mark``..."""

    def __init__(self, data: bytes = b"", **fields: int) -> None:
        self.packet = Packet(data)
        self.len = len(data)
        for name, value in fields.items():
            setattr(self, name, value)


# -- program decorators -------------------------------------------------------------------


def _program(kind: str, on_error: int, **attach: object) -> Callable[[F], F]:
    def mark(function: F) -> F:
        function.__pykex_program__ = {  # type: ignore[attr-defined]
            "kind": kind,
            "on_error": on_error,
            **attach,
        }
        return function

    return mark


def xdp(on_error: int = XDP_ABORTED, crash_stop: bool = False) -> Callable[[F], F]:
    """An XDP program; ``on_error`` is the verdict returned when it raises.
    With ``crash_stop`` the program disables itself after an exception (every
    later run returns ``on_error`` at once) until user space re-enables it."""
    return _program("xdp", on_error, **({"crash_stop": True} if crash_stop else {}))


def tc(direction: str = "ingress", on_error: int = TC_ACT_OK) -> Callable[[F], F]:
    """A tc (tcx) classifier on ``direction`` ``"ingress"`` or ``"egress"``."""
    if direction not in ("ingress", "egress"):
        raise ValueError('direction must be "ingress" or "egress"')
    return _program("tc", on_error, direction=direction)


def tracepoint(name: str, on_error: int = 0) -> Callable[[F], F]:
    """A tracepoint program on ``"group/name"`` (``"syscalls/sys_enter_openat"``)."""
    return _program("tracepoint", on_error, tracepoint=name)


def raw_tracepoint(name: str, on_error: int = 0) -> Callable[[F], F]:
    """A raw tracepoint program on ``name`` (``"sched_switch"``)."""
    return _program("raw_tracepoint", on_error, tracepoint=name)


def perf_event(on_error: int = 0) -> Callable[[F], F]:
    """A perf event program (sampling; attach with a frequency or period)."""
    return _program("perf_event", on_error)


def kprobe(function: str, on_error: int = 0) -> Callable[[F], F]:
    """A kprobe on entry to kernel ``function``."""
    return _program("kprobe", on_error, function=function)


def kretprobe(function: str, on_error: int = 0) -> Callable[[F], F]:
    """A kprobe on return from kernel ``function`` (``ctx.ret()``)."""
    return _program("kprobe", on_error, function=function, retprobe=True)


def uprobe(binary: str, symbol: str, on_error: int = 0) -> Callable[[F], F]:
    """A uprobe on entry to ``symbol`` of the executable or library ``binary``."""
    return _program("kprobe", on_error, binary=binary, symbol=symbol)


def uretprobe(binary: str, symbol: str, on_error: int = 0) -> Callable[[F], F]:
    """A uprobe on return from ``symbol`` of ``binary`` (``ctx.ret()``)."""
    return _program("kprobe", on_error, binary=binary, symbol=symbol, retprobe=True)


def socket_filter(on_error: int = SK_PASS) -> Callable[[F], F]:
    """A socket filter: returns how many bytes of each packet the socket keeps
    (0 drops it)."""
    return _program("socket_filter", on_error)


def cgroup_skb(direction: str = "ingress", on_error: int = SK_PASS) -> Callable[[F], F]:
    """A cgroup skb program on ``"ingress"`` or ``"egress"``: returns ``SK_PASS``
    or ``SK_DROP``."""
    if direction not in ("ingress", "egress"):
        raise ValueError('direction must be "ingress" or "egress"')
    return _program("cgroup_skb", on_error, direction=direction)


# -- helpers ------------------------------------------------------------------------------


def ktime_ns() -> int:
    """Nanoseconds since boot (``bpf_ktime_get_ns``), a u64."""
    return time.monotonic_ns()


def pid_tgid() -> int:
    """``tgid << 32 | pid`` of the current task (``bpf_get_current_pid_tgid``), a u64."""
    return os.getpid() << 32 | threading.get_native_id()


def current_pid() -> int:
    """The current process id (tgid), a u32."""
    return os.getpid()


def smp_processor_id() -> int:
    """The CPU running the program (``bpf_get_smp_processor_id``), a u32."""
    return os.sched_getcpu() if hasattr(os, "sched_getcpu") else 0


def uid_gid() -> int:
    """``gid << 32 | uid`` of the current task (``bpf_get_current_uid_gid``), a u64."""
    return os.getgid() << 32 | os.getuid()


def comm() -> bytes:
    """The current task's name (``bpf_get_current_comm``), a ``Bytes[16]``."""
    try:
        with open(f"/proc/{threading.get_native_id()}/comm", "rb") as f:
            name = f.read().rstrip(b"\n")
    except OSError:
        name = b""
    return name[:15].ljust(16, b"\0")


def get_prandom_u32() -> int:
    """A pseudo-random u32 (``bpf_get_prandom_u32``); not for cryptography."""
    return random.getrandbits(32)


def current_task() -> Any:
    """The current ``task_struct`` (``bpf_get_current_task``); its members are read
    with their vmlinux BTF offsets (``current_task().real_parent.tgid``)."""
    raise TypeError("current_task() reads kernel memory: compiled code only")


def user_string(address: int) -> Any:
    """The NUL-terminated string at user address ``address``; assign it to a
    ``Bytes[N]`` buffer, which receives at most N - 1 characters and a NUL."""
    raise TypeError("user_string() reads user memory: compiled code only")


def kernel_string(address: int) -> Any:
    """Like :func:`user_string`, for a string in kernel memory."""
    raise TypeError("kernel_string() reads kernel memory: compiled code only")


def user_read(address: int, kind: type[T]) -> T:
    """The ``kind`` value (an integer type, a Struct or an Array) stored at user
    address ``address``, read with ``bpf_probe_read_user``: ``kind.size`` bytes.
    Memory that cannot be read (a bad pointer, a page not mapped) reads as zeros."""
    raise TypeError("user_read() reads user memory: compiled code only")


def kernel_read(address: int, kind: type[T]) -> T:
    """Like :func:`user_read`, for kernel memory (``bpf_probe_read_kernel``)."""
    raise TypeError("kernel_read() reads kernel memory: compiled code only")


def _packet_only(name: str) -> Callable[..., Any]:
    def helper(*args: Any) -> Any:
        raise TypeError(f"{name}() changes a packet in the kernel: compiled code only")

    helper.__name__ = name
    return helper


xdp_adjust_head = _packet_only("xdp_adjust_head")
xdp_adjust_tail = _packet_only("xdp_adjust_tail")
redirect = _packet_only("redirect")
redirect_map = _packet_only("redirect_map")
skb_load_bytes = _packet_only("skb_load_bytes")
skb_store_bytes = _packet_only("skb_store_bytes")
csum_diff = _packet_only("csum_diff")
l3_csum_replace = _packet_only("l3_csum_replace")
l4_csum_replace = _packet_only("l4_csum_replace")
get_stack = _packet_only("get_stack")


def atomic_add(place: int, amount: int) -> None:
    """``atomic_add(v.field, n)`` adds ``n`` to a field of a map value atomically
    across CPUs. It names a place, which only the compiler can see: plain
    CPython passes the field's value, so calling it outside the compiler
    raises TypeError."""
    raise TypeError("atomic_add(v.field, n) works on compiled code only (kernel or host mode)")


def _swap(value: int, size: int) -> int:
    return int.from_bytes(value.to_bytes(size, "little"), "big")


def ntohs(value: int) -> int:
    """Swap the bytes of a u16 (network to host order on little-endian machines)."""
    return _swap(value & 0xFFFF, 2)


def htons(value: int) -> int:
    return _swap(value & 0xFFFF, 2)


def ntohl(value: int) -> int:
    """Swap the bytes of a u32."""
    return _swap(value & 0xFFFFFFFF, 4)


def htonl(value: int) -> int:
    return _swap(value & 0xFFFFFFFF, 4)


__all__ = [
    "BPF_F_FAST_STACK_CMP",
    "BPF_F_REUSE_STACKID",
    "BPF_F_USER_STACK",
    "SK_DROP",
    "SK_PASS",
    "TC_ACT_OK",
    "TC_ACT_PIPE",
    "TC_ACT_QUEUED",
    "TC_ACT_RECLASSIFY",
    "TC_ACT_REDIRECT",
    "TC_ACT_REPEAT",
    "TC_ACT_SHOT",
    "TC_ACT_STOLEN",
    "TC_ACT_UNSPEC",
    "XDP_ABORTED",
    "XDP_DROP",
    "XDP_PASS",
    "XDP_REDIRECT",
    "XDP_TX",
    "Array",
    "ArrayMap",
    "Bytes",
    "DevMap",
    "HashMap",
    "LpmTrie",
    "LruHashMap",
    "Packet",
    "PerCpuArray",
    "PerCpuHashMap",
    "PerfEventArray",
    "PerfEventContext",
    "ProbeContext",
    "ProgramArray",
    "RawTracepointContext",
    "RingBuffer",
    "SkbContext",
    "SpinLock",
    "StackTrace",
    "Struct",
    "TcContext",
    "TerminationError",
    "TracepointContext",
    "XdpContext",
    "atomic_add",
    "be16",
    "be32",
    "be64",
    "bool_",
    "cgroup_skb",
    "comm",
    "csum_diff",
    "current_pid",
    "current_task",
    "get_prandom_u32",
    "get_stack",
    "htonl",
    "htons",
    "i8",
    "i16",
    "i32",
    "i64",
    "kernel_read",
    "kernel_string",
    "kprobe",
    "kretprobe",
    "ktime_ns",
    "l3_csum_replace",
    "l4_csum_replace",
    "ntohl",
    "ntohs",
    "perf_event",
    "pid_tgid",
    "raw_tracepoint",
    "redirect",
    "redirect_map",
    "skb_load_bytes",
    "skb_store_bytes",
    "smp_processor_id",
    "socket_filter",
    "tail_call",
    "tc",
    "tracepoint",
    "u8",
    "u16",
    "u32",
    "u64",
    "uid_gid",
    "uprobe",
    "uretprobe",
    "user_read",
    "user_string",
    "xdp",
    "xdp_adjust_head",
    "xdp_adjust_tail",
]
