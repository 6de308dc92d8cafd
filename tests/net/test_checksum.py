"""The Internet checksum, its incremental update and the packet builders."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykex import net


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # RFC 1071, section 3: the words sum to 0xddf2.
        (bytes.fromhex("0001f203f4f5f6f7"), ~0xDDF2 & 0xFFFF),
        # A real IPv4 header with its checksum field zeroed; the header carried 0xb861.
        (bytes.fromhex("450000730000400040110000c0a80001c0a800c7"), 0xB861),
        # An odd byte is padded with zero on the right.
        (b"\x01", 0xFEFF),
        # The sum of nothing is 0 (+0 in one's complement), so its checksum is 0xFFFF.
        (b"", 0xFFFF),
        # Carries fold back in: 0xFFFF + 0x0001 = 0x0001 after the end-around carry.
        (bytes.fromhex("ffff0001"), 0xFFFE),
    ],
    ids=["rfc1071", "ipv4-header", "odd-length", "empty", "end-around-carry"],
)
def test_checksum_known_vectors(data: bytes, expected: int) -> None:
    assert net.checksum(data) == expected


def test_header_with_its_checksum_sums_to_zero() -> None:
    header = bytes.fromhex("45000073000040004011b861c0a80001c0a800c7")
    assert net.checksum(header) == 0


def test_incremental_update_rfc1624_example() -> None:
    """RFC 1624, section 4: m = 0x5555 becomes 0x3285 under HC = 0xDD2F; eqn. 3
    gives 0x0000 where the older eqn. 2 gave the wrong 0xFFFF."""
    assert net.update_checksum(0xDD2F, b"\x55\x55", b"\x32\x85") == 0x0000


@given(
    data=st.binary(min_size=2, max_size=64).filter(lambda b: len(b) % 2 == 0),
    where=st.integers(min_value=0),
    width=st.sampled_from([2, 4, 16]),
    new=st.binary(min_size=16, max_size=16),
)
def test_incremental_update_equals_recomputing(data: bytes, where: int, width: int,
                                                new: bytes) -> None:
    data = data.ljust(width, b"\0")
    start = where % ((len(data) - width) // 2 + 1) * 2  # a 16-bit aligned field
    changed = data[:start] + new[:width] + data[start + width :]
    updated = net.update_checksum(net.checksum(data), data[start : start + width],
                                  new[:width])
    if any(changed):
        assert updated == net.checksum(changed)
    else:
        # All-zero data sums to +0 (checksum 0xFFFF) when recomputed; the update
        # reaches the same sum as -0 (checksum 0x0000). Receivers accept both.
        assert updated in (0x0000, 0xFFFF)


def test_update_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="same even number"):
        net.update_checksum(0, b"\x01\x02", b"\x01")


# -- builders ----------------------------------------------------------------------------


def test_udp_ipv4_frame() -> None:
    frame = net.build_udp_ipv4(b"hello", sport=4000, dport=53, saddr="192.168.1.10",
                               daddr="10.1.2.3", ttl=17, src_mac="0a:0b:0c:0d:0e:0f")
    assert len(frame) == 14 + 20 + 8 + 5
    eth = net.Ethernet.unpack_from(frame)
    assert eth.proto == net.ETH_P_IP
    assert bytes(eth.src) == bytes.fromhex("0a0b0c0d0e0f")
    assert bytes(eth.dst) == net.mac_bytes(net.DEFAULT_DST_MAC)
    ip = net.IPv4.unpack_from(frame, 14)
    assert (ip.version_ihl >> 4, (ip.version_ihl & 0x0F) * 4) == (4, 20)
    assert (ip.tot_len, ip.ttl, ip.protocol) == (33, 17, net.IPPROTO_UDP)
    assert (ip.saddr, ip.daddr) == (0xC0A8010A, 0x0A010203)
    assert net.checksum(frame[14:34]) == 0
    udp = net.UDP.unpack_from(frame, 34)
    assert (udp.sport, udp.dport, udp.len) == (4000, 53, 13)
    pseudo = net.ipv4_pseudo_header(ip.saddr, ip.daddr, net.IPPROTO_UDP, udp.len)
    assert net.checksum(pseudo + frame[34:]) == 0
    assert frame[42:] == b"hello"


def test_tcp_ipv4_frame() -> None:
    frame = net.build_tcp_ipv4(b"GET /", dport=8080, flags=net.TCP_SYN | net.TCP_ACK, seq=7)
    ip = net.IPv4.unpack_from(frame, 14)
    tcp = net.TCP.unpack_from(frame, 34)
    assert (tcp.dport, tcp.seq, (tcp.data_offset >> 4) * 4) == (8080, 7, 20)
    assert tcp.flags == net.TCP_SYN | net.TCP_ACK
    pseudo = net.ipv4_pseudo_header(ip.saddr, ip.daddr, net.IPPROTO_TCP, len(frame) - 34)
    assert net.checksum(pseudo + frame[34:]) == 0


@pytest.mark.parametrize(
    ("build", "nexthdr", "l4_size"),
    [(net.build_udp_ipv6, net.IPPROTO_UDP, 8), (net.build_tcp_ipv6, net.IPPROTO_TCP, 20),
     (net.build_icmpv6_echo, net.IPPROTO_ICMPV6, 8)],
    ids=["udp", "tcp", "icmpv6"],
)
def test_ipv6_frames(build: Callable[..., bytes], nexthdr: int, l4_size: int) -> None:
    frame = build(b"xyz", saddr="2001:db8::1", daddr="fe80::2")
    assert net.Ethernet.unpack_from(frame).proto == net.ETH_P_IPV6
    ip6 = net.IPv6.unpack_from(frame, 14)
    assert ip6.version_class_flow >> 28 == 6
    assert (ip6.nexthdr, ip6.payload_len) == (nexthdr, l4_size + 3)
    assert bytes(ip6.saddr) == bytes.fromhex("20010db8" + "00" * 11 + "01")
    pseudo = net.ipv6_pseudo_header(bytes(ip6.saddr), bytes(ip6.daddr), nexthdr,
                                    ip6.payload_len)
    assert net.checksum(pseudo + frame[54:]) == 0


def test_icmp_echo_and_vlan() -> None:
    frame = net.build_icmp_echo_ipv4(b"ping", ident=9, sequence=3, vlan_id=42)
    eth = net.Ethernet.unpack_from(frame)
    vlan = net.Vlan.unpack_from(frame, 14)
    assert (eth.proto, vlan.tci & net.VLAN_VID_MASK, vlan.proto) == (
        net.ETH_P_8021Q, 42, net.ETH_P_IP)
    icmp = net.ICMP.unpack_from(frame, 18 + 20)
    assert (icmp.type, icmp.id, icmp.sequence) == (net.ICMP_ECHO, 9, 3)
    assert net.checksum(frame[38:]) == 0


def test_arp_request() -> None:
    frame = net.build_arp(sender_ip="10.0.0.7", target_ip="10.0.0.9")
    assert len(frame) == 14 + 28
    eth = net.Ethernet.unpack_from(frame)
    assert bytes(eth.dst) == b"\xff" * 6
    arp = net.Arp.unpack_from(frame, 14)
    assert (arp.op, arp.sender_ip, arp.target_ip) == (net.ARPOP_REQUEST, 0x0A000007, 0x0A000009)
    assert frame[14 + 14 : 14 + 18] == bytes([10, 0, 0, 7])


@pytest.mark.parametrize("bad", ["02:00:00:00:01", b"\x00" * 7])
def test_bad_mac_is_a_clear_error(bad: str | bytes) -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        net.build_udp_ipv4(src_mac=bad)


def test_payload_for_a_full_size_frame() -> None:
    """1,500-byte IP packets: the size the payload scanner example works on."""
    frame = net.build_udp_ipv4(bytes(1500 - 28))
    assert net.IPv4.unpack_from(frame, 14).tot_len == 1500
    assert len(frame) == 1514
