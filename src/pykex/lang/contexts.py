"""Fields of each program context: where they sit in the kernel's context
struct, their type, and whether a program may write them.

XDP programs see ``struct xdp_md`` (without ``egress_ifindex``, which only
devmap programs may read) and tc programs ``struct __sk_buff``
(offsets from this kernel's uapi headers; they are ABI and never move).
Tracepoint programs see the event record, whose fields come from the
tracepoint's format file read at build time.
"""

from __future__ import annotations

from pykex.btf import TracepointFormat
from pykex.ir.nodes import Scalar
from pykex.lang.types import U32_T, IntT, Type

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


def context_field(kind: str, name: str, tracepoint: TracepointFormat | None
                  ) -> tuple[int, Type, bool] | None:
    """``(offset, type, writable)`` of field ``name`` of a ``kind`` context, or None."""
    if kind == "xdp":
        return XDP_FIELDS.get(name)
    if kind == "tc":
        return SKB_FIELDS.get(name)
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
                return f"{name} is a variable-length (__data_loc) field, not supported yet"
            if field.array_length is not None:
                return f"{name} is an array field ({field.c_type}[]), not supported yet"
            return f"{name} has size {field.size}, which is not an integer width"
    return None
