"""Fields of each program context: where they sit in the kernel's context
struct, their type, and whether a program may write them.

XDP programs see ``struct xdp_md`` (without ``egress_ifindex``, which only
devmap programs may read) and tc programs ``struct __sk_buff``
(offsets from this kernel's uapi headers; they are ABI and never move).
Tracepoint programs see the event record, whose fields come from the
tracepoint's format file read at build time.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import cache

from pykex.btf import BTFError, TracepointField, TracepointFormat, load_vmlinux
from pykex.ir.nodes import Scalar
from pykex.lang.types import U8_T, U32_T, U64_T, ArrayT, IntT, Type

# name -> (offset, type, writable)
XDP_FIELDS: dict[str, tuple[int, Type, bool]] = {
    "ingress_ifindex": (12, U32_T, False),
    "rx_queue_index": (16, U32_T, False),
}

SKB_FIELDS: dict[str, tuple[int, Type, bool]] = {
    "len": (0, U32_T, False),
    "pkt_type": (4, U32_T, False),
    "mark": (8, U32_T, True),
    "queue_mapping": (12, U32_T, True),
    "protocol": (16, U32_T, False),
    "vlan_present": (20, U32_T, False),
    "vlan_tci": (24, U32_T, False),
    "vlan_proto": (28, U32_T, False),
    "priority": (32, U32_T, True),
    "ingress_ifindex": (36, U32_T, False),
    "ifindex": (40, U32_T, False),
    "tc_index": (44, U32_T, True),
    "hash": (68, U32_T, False),
    "tc_classid": (72, U32_T, True),
    "napi_id": (84, U32_T, False),
}


# Socket filters and cgroup skb programs may read these (and write none).
READ_ONLY_SKB_FIELDS = ("len", "pkt_type", "mark", "queue_mapping", "protocol", "vlan_present",
                        "vlan_tci", "vlan_proto", "priority", "ingress_ifindex", "ifindex",
                        "hash")
SKB_READ_FIELDS: dict[str, tuple[int, Type, bool]] = {
    name: (SKB_FIELDS[name][0], SKB_FIELDS[name][1], False) for name in READ_ONLY_SKB_FIELDS
}

# The registers of the integer arguments and the result in the x86-64 calling
# convention, as ``struct pt_regs`` names them.
X86_64_ARGUMENTS = ("di", "si", "dx", "cx", "r8", "r9")
X86_64_RESULT = "ax"


class ContextLayoutError(Exception):
    """The build machine cannot say where a context field lives."""


@cache
def pt_regs_offset(register: str) -> int:
    """Offset of ``register`` in this machine's ``struct pt_regs`` (vmlinux BTF)."""
    if platform.machine() != "x86_64":
        raise ContextLayoutError(f"probe registers are known for x86-64 only, not "
                                 f"{platform.machine()}")
    try:
        return load_vmlinux().member("pt_regs", register).byte_offset
    except (BTFError, OSError) as failure:
        raise ContextLayoutError(f"cannot read struct pt_regs from vmlinux BTF: "
                                 f"{failure}") from None


@cache
def pt_regs_size() -> int:
    try:
        return load_vmlinux().sizeof("pt_regs")
    except (BTFError, OSError) as failure:
        raise ContextLayoutError(f"cannot read struct pt_regs from vmlinux BTF: "
                                 f"{failure}") from None


def probe_argument(index: int) -> int:
    return pt_regs_offset(X86_64_ARGUMENTS[index])


def probe_result() -> int:
    return pt_regs_offset(X86_64_RESULT)


def _probe_fields() -> dict[str, tuple[int, Type, bool]]:
    return {"ip": (pt_regs_offset("ip"), U64_T, False),
            "sp": (pt_regs_offset("sp"), U64_T, False)}


def _perf_event_fields() -> dict[str, tuple[int, Type, bool]]:
    # struct bpf_perf_event_data { bpf_user_pt_regs_t regs; __u64 sample_period; __u64 addr; }
    regs = pt_regs_size()
    return {"sample_period": (regs, U64_T, False), "addr": (regs + 8, U64_T, False),
            **_probe_fields()}


@dataclass(frozen=True)
class TracepointString:
    """A tracepoint field that names a string: ``data_loc``/``rel_loc`` (the bytes
    follow the record, located by a 32-bit word at ``field.offset``) or ``pointer``
    (a ``char *`` in user or kernel memory). ``char name[N]`` arrays inside the
    record are values (:func:`tracepoint_array`)."""

    field: TracepointField
    form: str
    space: str  # "user" or "kernel": which probe-read helper reaches the bytes


def tracepoint_string(tracepoint: TracepointFormat, name: str) -> TracepointString | None:
    for field in tracepoint.fields:
        if field.name != name:
            continue
        base = _base_type(field.c_type)
        if field.dynamic is not None and base == "char[]":
            return TracepointString(field, field.dynamic, "kernel")
        if field.dynamic is None and base in ("char *", "char*") and field.size == 8:
            # System call arguments point into the calling process.
            space = "user" if tracepoint.group == "syscalls" else "kernel"
            return TracepointString(field, "pointer", space)
    return None


def tracepoint_array(tracepoint: TracepointFormat, name: str) -> ArrayT | None:
    """The type of fixed-array field ``name`` (``__u8 saddr[4]``, ``char comm[16]``):
    ``Bytes[N]`` for chars, ``Array[T, N]`` for other integer elements; None
    when ``name`` is not such a field."""
    for field in tracepoint.fields:
        if field.name != name or field.dynamic or not field.array_length:
            continue
        element_size, rest = divmod(field.size, field.array_length)
        if rest or element_size not in (1, 2, 4, 8):
            return None
        if _base_type(field.c_type) == "char":
            return ArrayT(U8_T, field.array_length, text=True)
        return ArrayT(IntT(Scalar(element_size * 8, field.signed)), field.array_length)
    return None


def _base_type(c_type: str) -> str:
    for qualifier in ("const ", "unsigned ", "signed "):
        c_type = c_type.replace(qualifier, "")
    return c_type.strip()


def context_field(kind: str, name: str, tracepoint: TracepointFormat | None
                  ) -> tuple[int, Type, bool] | None:
    """``(offset, type, writable)`` of field ``name`` of a ``kind`` context, or None."""
    if kind == "xdp":
        return XDP_FIELDS.get(name)
    if kind == "tc":
        return SKB_FIELDS.get(name)
    if kind in ("socket_filter", "cgroup_skb"):
        return SKB_READ_FIELDS.get(name)
    if kind == "kprobe" and name in ("ip", "sp"):
        return _probe_fields()[name]
    if kind == "perf_event" and name in ("sample_period", "addr", "ip", "sp"):
        return _perf_event_fields()[name]
    if kind == "tracepoint" and tracepoint is not None:
        for field in tracepoint.fields:
            if field.name != name or field.dynamic or field.array_length is not None:
                continue
            if field.size not in (1, 2, 4, 8):
                return None
            return field.offset, IntT(Scalar(field.size * 8, field.signed)), False
    return None


def unsupported_tracepoint_field(tracepoint: TracepointFormat, name: str) -> str | None:
    """Why field ``name`` exists but cannot be read yet, or None."""
    for field in tracepoint.fields:
        if field.name == name:
            if field.dynamic:
                return f"{name} is a variable-length field of {field.c_type}, not supported"
            if field.array_length is not None:
                return f"{name} is an array field ({field.c_type}[{field.array_length}]) " \
                    "whose elements are not integers of 1, 2, 4 or 8 bytes"
            return f"{name} has size {field.size}, which is not an integer width"
    return None
