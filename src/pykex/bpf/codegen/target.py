"""What the backend needs to know about each program kind, in one place.

``packet`` gives the context offsets of the 32-bit ``data``/``data_end``
fields the verifier rewrites into packet pointers (``struct xdp_md`` for XDP,
``struct __sk_buff`` for the skb-based kinds); kinds without packet access
have ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pykex.kernel.uapi import AttachType, ProgType


@dataclass(frozen=True)
class PacketFields:
    data: int
    data_end: int


XDP_MD = PacketFields(data=0, data_end=4)
SK_BUFF = PacketFields(data=76, data_end=80)


@dataclass(frozen=True)
class ProgramKind:
    name: str
    prog_type: ProgType
    packet: PacketFields | None = None
    expected_attach_type: AttachType | None = None


PROGRAM_KINDS: dict[str, ProgramKind] = {
    kind.name: kind
    for kind in (
        ProgramKind("xdp", ProgType.XDP, XDP_MD),
        ProgramKind("tc", ProgType.SCHED_CLS, SK_BUFF),
        ProgramKind("socket_filter", ProgType.SOCKET_FILTER, SK_BUFF),
        ProgramKind("cgroup_skb", ProgType.CGROUP_SKB, SK_BUFF),
        ProgramKind("tracepoint", ProgType.TRACEPOINT),
        ProgramKind("raw_tracepoint", ProgType.RAW_TRACEPOINT),
        ProgramKind("kprobe", ProgType.KPROBE),
        ProgramKind("perf_event", ProgType.PERF_EVENT),
    )
}


def program_kind(name: str) -> ProgramKind:
    try:
        return PROGRAM_KINDS[name]
    except KeyError:
        known = ", ".join(sorted(PROGRAM_KINDS))
        raise ValueError(f"unknown program kind {name!r} (known: {known})") from None


def expected_attach_type(kind: ProgramKind, attach: dict[str, object]) -> int:
    """The attach type the kernel must know at load time (cgroup skb direction)."""
    if kind.prog_type == ProgType.CGROUP_SKB:
        direction = attach.get("direction", "ingress")
        return int(
            AttachType.CGROUP_INET_EGRESS if direction == "egress"
            else AttachType.CGROUP_INET_INGRESS
        )
    return int(kind.expected_attach_type or 0)
