"""What each name of the prelude means to the compiler, by category.

The compiler resolves a name to one of these entries when the module
imported it from ``pykex`` (or ``pykex.lang.prelude``); it never looks at
the Python object itself except to read constant values.
"""

from __future__ import annotations

from pykex.lang import prelude
from pykex.lang.types import (
    BOOL_T,
    I64_T,
    SCALAR_TYPES,
    U16_T,
    U32_T,
    U64_T,
    Type,
)

PRELUDE_MODULES = ("pykex", "pykex.lang.prelude")

# prelude class -> (kernel map type, number of type parameters)
MAP_KINDS: dict[str, tuple[str, int]] = {
    "HashMap": ("HASH", 2),
    "LruHashMap": ("LRU_HASH", 2),
    "PerCpuHashMap": ("PERCPU_HASH", 2),
    "LpmTrie": ("LPM_TRIE", 2),
    "ArrayMap": ("ARRAY", 1),
    "PerCpuArray": ("PERCPU_ARRAY", 1),
    "RingBuffer": ("RINGBUF", 0),
    "PerfEventArray": ("PERF_EVENT_ARRAY", 0),
    "StackTrace": ("STACK_TRACE", 0),
    "DevMap": ("DEVMAP", 0),
    "ProgramArray": ("PROG_ARRAY", 0),
}

# decorator -> program kind (uprobes and kretprobes are kprobe programs that
# attach differently)
PROGRAM_DECORATORS = {
    "xdp": "xdp",
    "tc": "tc",
    "tracepoint": "tracepoint",
    "raw_tracepoint": "raw_tracepoint",
    "perf_event": "perf_event",
    "kprobe": "kprobe",
    "kretprobe": "kprobe",
    "uprobe": "kprobe",
    "uretprobe": "kprobe",
    "socket_filter": "socket_filter",
    "cgroup_skb": "cgroup_skb",
}

CONTEXTS = {
    "XdpContext": "xdp",
    "TcContext": "tc",
    "TracepointContext": "tracepoint",
    "RawTracepointContext": "raw_tracepoint",
    "ProbeContext": "kprobe",
    "PerfEventContext": "perf_event",
    "SkbContext": "socket_filter",
}

# Program kinds that share a context class with another kind.
CONTEXT_OF_KIND = {"cgroup_skb": "socket_filter"}

DEFAULT_ON_ERROR = {
    "xdp": prelude.XDP_ABORTED,
    "tc": prelude.TC_ACT_OK,
    "tracepoint": 0,
    "raw_tracepoint": 0,
    "perf_event": 0,
    "kprobe": 0,
    "socket_filter": prelude.SK_PASS,
    "cgroup_skb": prelude.SK_PASS,
}

# Kinds whose context holds a packet, and those that may also change it.
PACKET_KINDS = frozenset({"xdp", "tc", "socket_filter", "cgroup_skb"})
WRITABLE_PACKET_KINDS = frozenset({"xdp", "tc"})
# Kinds the kernel lets read kernel stacks (bpf_get_stackid, bpf_get_stack).
TRACING_KINDS = frozenset({"tracepoint", "raw_tracepoint", "kprobe", "perf_event"})

CONSTANTS: dict[str, int] = {
    name: getattr(prelude, name)
    for name in prelude.__all__
    if name.startswith(("XDP_", "TC_ACT_", "SK_", "BPF_F_"))
}

# helper name -> (kernel helper, result type)
HELPERS: dict[str, tuple[str, Type]] = {
    "ktime_ns": ("bpf_ktime_get_ns", U64_T),
    "pid_tgid": ("bpf_get_current_pid_tgid", U64_T),
    "current_pid": ("bpf_get_current_pid_tgid", U32_T),
    "smp_processor_id": ("bpf_get_smp_processor_id", U32_T),
    "uid_gid": ("bpf_get_current_uid_gid", U64_T),
    "get_prandom_u32": ("bpf_get_prandom_u32", U32_T),
}

BYTE_SWAPS: dict[str, Type] = {"ntohs": U16_T, "htons": U16_T, "ntohl": U32_T, "htonl": U32_T}

# Python's exceptions an extension may raise (and the ones the runtime raises).
EXCEPTIONS = frozenset(
    {
        "ArithmeticError",
        "AssertionError",
        "IndexError",
        "KeyError",
        "LookupError",
        "MemoryError",
        "OverflowError",
        "RuntimeError",
        "ValueError",
        "ZeroDivisionError",
        "TerminationError",
    }
)

# Names that CPython offers but that have no meaning in an extension, with why.
FORBIDDEN_BUILTINS = {
    "id": "id() exposes object addresses; pykex has no pointers",
    "ctypes": "ctypes reaches raw memory; pykex has no pointers",
    "eval": "eval() runs code chosen at run time; an extension is compiled ahead of time",
    "exec": "exec() runs code chosen at run time; an extension is compiled ahead of time",
    "open": "files cannot be opened from the kernel",
    "input": "there is no terminal in the kernel",
    "globals": "globals() exposes the interpreter's namespaces, which do not exist in the kernel",
    "locals": "locals() exposes the interpreter's namespaces, which do not exist in the kernel",
    "getattr": "getattr() looks names up at run time; write the attribute directly",
    "setattr": "setattr() looks names up at run time; assign the attribute directly",
    "memoryview": "memoryview reaches raw memory; use ctx.packet's checked accesses",
    "float": "floats are not supported in the kernel",
    "str": "strings exist only as literals in print(), raise and assert messages",
    "list": "lists are not supported; use Array[T, N] fields or maps",
    "dict": "dicts are not supported; declare a HashMap at module level",
    "set": "sets are not supported; declare a HashMap at module level",
    "tuple": "tuples are not supported; use a Struct",
    "isinstance": "types are known at compile time; isinstance() is not needed",
    "type": "types are known at compile time; type() is not available",
}

SCALARS = dict(SCALAR_TYPES)
CONVERSIONS = {**{k: v for k, v in SCALARS.items() if k != "bool_"}, "bool_": BOOL_T}
DEFAULT_INT = I64_T
