"""examples/packet_parser.py: every header path, the counters, and what gets dropped.

Each case is a frame built with pykex.net plus, written by hand, what the
parser must do with it: its verdict, the transport protocol it counts (or
None), the destination port class it counts (or None), and whether it is
malformed (dropped and counted) or truncated (dropped by ``on_error``, with an
IndexError report).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from pykex.lang.prelude import XDP_DROP, XDP_PASS
from pykex.net import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPv4,
    IPv6,
    Vlan,
    build_arp,
    build_icmp_echo_ipv4,
    build_icmpv6_echo,
    build_tcp_ipv4,
    build_udp_ipv4,
    build_udp_ipv6,
)

WELL_KNOWN, REGISTERED, DYNAMIC = 0, 1, 2
IP = 14  # where the IP header starts in an untagged frame


def patched_ipv4(frame: bytes, **fields: int) -> bytes:
    header = IPv4.unpack_from(frame, IP)
    for name, value in fields.items():
        setattr(header, name, value)
    return frame[:IP] + bytes(header) + frame[IP + IPv4.size :]


def with_ipv4_options(frame: bytes, options: bytes) -> bytes:
    """The frame with ``options`` after its IPv4 header (a multiple of 4 bytes)."""
    header = IPv4.unpack_from(frame, IP)
    header.version_ihl = 0x40 | (IPv4.size + len(options)) // 4
    header.tot_len += len(options)
    return frame[:IP] + bytes(header) + options + frame[IP + IPv4.size :]


def patched_ipv6(frame: bytes, **fields: int) -> bytes:
    header = IPv6.unpack_from(frame, IP)
    for name, value in fields.items():
        setattr(header, name, value)
    return frame[:IP] + bytes(header) + frame[IP + IPv6.size :]


def with_ipv6_extensions(frame: bytes, fragment_offset: int) -> bytes:
    """The frame with a hop-by-hop header (8 bytes, padding only) and a fragment
    header (fragment offset in 8-byte units) between IPv6 and its payload."""
    header = IPv6.unpack_from(frame, IP)
    transport = header.nexthdr
    hop_by_hop = bytes([IPPROTO_FRAGMENT, 0, 1, 4, 0, 0, 0, 0])  # PadN over 6 bytes
    fragment = bytes([transport, 0]) + (fragment_offset << 3).to_bytes(2, "big") + bytes(4)
    header.nexthdr = IPPROTO_HOPOPTS
    header.payload_len += len(hop_by_hop) + len(fragment)
    payload = frame[IP + IPv6.size :]
    return frame[:IP] + bytes(header) + hop_by_hop + fragment + payload


def double_tagged(frame: bytes) -> bytes:
    """802.1ad outer tag (VLAN 100), 802.1Q inner tag (VLAN 7), then the frame's payload."""
    outer = Vlan(tci=100, proto=ETH_P_8021Q)
    inner = Vlan(tci=7, proto=int.from_bytes(frame[12:14], "big"))
    return frame[:12] + ETH_P_8021AD.to_bytes(2, "big") + bytes(outer) + bytes(inner) + frame[14:]


@dataclass(frozen=True)
class Case:
    frame: bytes
    verdict: int
    protocol: int | None = None
    port_class: int | None = None
    malformed: bool = False
    truncated: bool = False


CASES = {
    "tcp-ipv4-80": Case(build_tcp_ipv4(dport=80), XDP_PASS, IPPROTO_TCP, WELL_KNOWN),
    "udp-ipv4-5353": Case(build_udp_ipv4(dport=5353), XDP_PASS, IPPROTO_UDP, REGISTERED),
    "udp-ipv6-50000": Case(build_udp_ipv6(dport=50000), XDP_PASS, IPPROTO_UDP, DYNAMIC),
    "icmp-ipv4": Case(build_icmp_echo_ipv4(), XDP_PASS, IPPROTO_ICMP),
    "icmpv6": Case(build_icmpv6_echo(), XDP_PASS, IPPROTO_ICMPV6),
    "vlan-tcp-443": Case(build_tcp_ipv4(dport=443, vlan_id=5), XDP_PASS, IPPROTO_TCP,
                         WELL_KNOWN),
    "qinq-udp-1024": Case(double_tagged(build_udp_ipv4(dport=1024)), XDP_PASS, IPPROTO_UDP,
                          REGISTERED),
    "ipv4-options-tcp-49152": Case(
        with_ipv4_options(build_tcp_ipv4(dport=49152), b"\x01" * 8), XDP_PASS, IPPROTO_TCP,
        DYNAMIC),
    "ipv4-later-fragment": Case(patched_ipv4(build_udp_ipv4(dport=53), frag_off=100),
                                XDP_PASS, IPPROTO_UDP),
    "ipv6-extensions-first-fragment": Case(
        with_ipv6_extensions(build_udp_ipv6(dport=8080), fragment_offset=0), XDP_PASS,
        IPPROTO_UDP, REGISTERED),
    "ipv6-extensions-later-fragment": Case(
        with_ipv6_extensions(build_udp_ipv6(dport=8080), fragment_offset=185), XDP_PASS,
        IPPROTO_UDP),
    "arp": Case(build_arp(), XDP_PASS),
    "ipv4-version-5": Case(patched_ipv4(build_udp_ipv4(), version_ihl=0x55), XDP_DROP,
                           malformed=True),
    "ipv4-ihl-4": Case(patched_ipv4(build_udp_ipv4(), version_ihl=0x44), XDP_DROP,
                       malformed=True),
    "ipv4-tot-len-short": Case(patched_ipv4(build_udp_ipv4(), tot_len=19), XDP_DROP,
                               malformed=True),
    "ipv6-version-4": Case(patched_ipv6(build_udp_ipv6(), version_class_flow=4 << 28),
                           XDP_DROP, malformed=True),
    # Malformed transport headers are dropped after the protocol was counted.
    "tcp-data-offset-4": Case(build_tcp_ipv4()[:46] + b"\x40" + build_tcp_ipv4()[47:],
                              XDP_DROP, IPPROTO_TCP, malformed=True),
    "udp-length-7": Case(build_udp_ipv4()[:38] + b"\x00\x07" + build_udp_ipv4()[40:],
                         XDP_DROP, IPPROTO_UDP, malformed=True),
    "ipv4-truncated": Case(build_udp_ipv4()[:IP + 10], XDP_DROP, truncated=True),
    "tcp-truncated": Case(build_tcp_ipv4()[:IP + 20 + 10], XDP_DROP, IPPROTO_TCP,
                          truncated=True),
    "vlan-truncated": Case(build_udp_ipv4(vlan_id=3)[:16], XDP_DROP, truncated=True),
}


@pytest.mark.parametrize("name", CASES)
def test_each_frame(name: str, open_example) -> None:
    case = CASES[name]
    ext = open_example("packet_parser")
    result = ext.parse.test_run(case.frame)
    assert result.retval == case.verdict
    assert result.packet == case.frame  # the parser never writes
    if case.truncated:
        assert result.exception is not None and result.exception.kind == "IndexError"
    else:
        assert result.exception is None
    expected_protocols = {case.protocol: 1} if case.protocol is not None else {}
    assert counted(ext.protocols) == expected_protocols
    expected_classes = {case.port_class: 1} if case.port_class is not None else {}
    assert counted(ext.port_classes) == expected_classes
    assert sum(ext.malformed[0]) == int(case.malformed)


def test_counters_add_up_over_all_frames(open_example) -> None:
    ext = open_example("packet_parser")
    for case in CASES.values():
        ext.parse.test_run(case.frame, repeat=2)
    cases = CASES.values()
    assert counted(ext.protocols) == {
        protocol: 2 * count
        for protocol, count in Counter(c.protocol for c in cases if c.protocol is not None).items()
    }
    assert counted(ext.port_classes) == {
        port_class: 2 * count
        for port_class, count in Counter(
            c.port_class for c in cases if c.port_class is not None).items()
    }
    assert sum(ext.malformed[0]) == 2 * sum(c.malformed for c in cases)
    assert ext.exceptions()["parse"] == 2 * sum(c.truncated for c in cases)


def counted(per_cpu_array) -> dict[int, int]:
    """Index -> total over CPUs, for the indexes that counted anything."""
    totals = {index: sum(per_cpu) for index, per_cpu in per_cpu_array.items()}
    return {index: total for index, total in totals.items() if total}
