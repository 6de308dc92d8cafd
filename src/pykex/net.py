"""Network protocol headers, constants, checksums and test packets.

The headers are :class:`~pykex.layout.Struct` classes whose fields carry
their byte order (``be16``, ``be32``), so an extension reads a header from a
packet and compares its fields with plain numbers::

    from pykex.net import ETH_P_IP, Ethernet, IPv4

    eth = ctx.packet.read(0, Ethernet)
    if eth.proto == ETH_P_IP:
        ip = ctx.packet.read(Ethernet.size, IPv4)

Each header has the size and field offsets of its C counterpart in the Linux
UAPI headers (``struct ethhdr``, ``struct iphdr``, ``struct ipv6hdr``,
``struct tcphdr``, ...). Where C uses bitfields, the byte holding them is one
field here and the header's docstring gives the arithmetic, which is the
same in an extension and in user space (for IPv4, header length in bytes is
``(ip.version_ihl & 0x0F) * 4``).

For user space, the module also offers the Internet checksum (RFC 1071), its
incremental update (RFC 1624) and builders of complete Ethernet frames for
test runs (:func:`build_udp_ipv4` and friends).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from pykex.layout import Array, Struct, be16, be32, u8

# -- constants --------------------------------------------------------------------------

# EtherTypes (<linux/if_ether.h>)
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_IPV6 = 0x86DD
ETH_ALEN = 6
ETH_HLEN = 14

# 802.1Q tag control information: priority (3 bits), drop eligible (1), VLAN id (12).
VLAN_VID_MASK = 0x0FFF
VLAN_PRIO_SHIFT = 13

# IP protocol numbers (<netinet/in.h>); IPv6 extension headers share the space.
IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_IGMP = 2
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_GRE = 47
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60
IPPROTO_SCTP = 132

# IPv4 frag_off bits
IP_RF = 0x8000  # reserved
IP_DF = 0x4000  # don't fragment
IP_MF = 0x2000  # more fragments
IP_OFFMASK = 0x1FFF  # fragment offset, in units of 8 bytes

# TCP flags, the bits of TCP.flags
TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20
TCP_ECE = 0x40
TCP_CWR = 0x80

# ICMP and ICMPv6 message types
ICMP_ECHOREPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_ECHO = 8
ICMP_TIME_EXCEEDED = 11
ICMPV6_DEST_UNREACH = 1
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129

# ARP (<linux/if_arp.h>)
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2


# -- headers ----------------------------------------------------------------------------


class Ethernet(Struct):
    """Ethernet II header (``struct ethhdr``, 14 bytes); ``proto`` is the EtherType."""

    dst: Array[u8, 6]
    src: Array[u8, 6]
    proto: be16


class Vlan(Struct):
    """802.1Q tag as it follows the Ethernet header whose ``proto`` is
    ``ETH_P_8021Q`` (the kernel's ``struct vlan_hdr``, 4 bytes).

    ``tci & VLAN_VID_MASK`` is the VLAN id, ``tci >> VLAN_PRIO_SHIFT`` the
    priority; ``proto`` is the EtherType of what follows the tag.
    """

    tci: be16
    proto: be16


class Arp(Struct, packed=True):
    """ARP for IPv4 over Ethernet (``struct ether_arp``, 28 bytes).

    ``hardware_type`` is ``ARPHRD_ETHER``, ``protocol_type`` ``ETH_P_IP``,
    ``op`` ``ARPOP_REQUEST`` or ``ARPOP_REPLY``. The struct is packed because
    the IPv4 addresses sit at offsets 14 and 24, which C declares as byte
    arrays; here they are ``be32`` so they compare with ``IPv4.saddr``.
    """

    hardware_type: be16
    protocol_type: be16
    hardware_len: u8
    protocol_len: u8
    op: be16
    sender_mac: Array[u8, 6]
    sender_ip: be32
    target_mac: Array[u8, 6]
    target_ip: be32


class IPv4(Struct):
    """IPv4 header without options (``struct iphdr``, 20 bytes).

    ``version_ihl`` holds the version (high nibble, 4) and the header length
    in 32-bit words (low nibble): the header is ``(ip.version_ihl & 0x0F) * 4``
    bytes long and options follow these 20 bytes when that exceeds 20.
    ``frag_off & IP_OFFMASK`` is the fragment offset in 8-byte units;
    ``IP_DF`` and ``IP_MF`` are its flags. ``check`` is the header checksum
    as a big-endian number (:func:`checksum` of the header).
    """

    version_ihl: u8
    tos: u8
    tot_len: be16
    id: be16
    frag_off: be16
    ttl: u8
    protocol: u8
    check: be16
    saddr: be32
    daddr: be32


class IPv6(Struct):
    """IPv6 fixed header (``struct ipv6hdr``, 40 bytes).

    ``version_class_flow`` is the first 32 bits: version (``>> 28``, 6),
    traffic class (``>> 20 & 0xFF``) and flow label (``& 0xFFFFF``).
    ``nexthdr`` is an ``IPPROTO_*`` number: a transport protocol or an
    extension header. Addresses are 16 bytes in network order.
    """

    version_class_flow: be32
    payload_len: be16
    nexthdr: u8
    hop_limit: u8
    saddr: Array[u8, 16]
    daddr: Array[u8, 16]


class TCP(Struct):
    """TCP header without options (``struct tcphdr``, 20 bytes).

    ``data_offset >> 4`` is the header length in 32-bit words (the header is
    ``(tcp.data_offset >> 4) * 4`` bytes); ``flags`` holds the bits
    ``TCP_FIN`` ... ``TCP_CWR`` (test with ``tcp.flags & TCP_SYN``).
    """

    sport: be16
    dport: be16
    seq: be32
    ack_seq: be32
    data_offset: u8
    flags: u8
    window: be16
    check: be16
    urg_ptr: be16


class UDP(Struct):
    """UDP header (``struct udphdr``, 8 bytes); ``len`` counts header and payload."""

    sport: be16
    dport: be16
    len: be16
    check: be16


class ICMP(Struct):
    """ICMP header (``struct icmphdr``, 8 bytes) with the echo view of its last
    four bytes (``id``, ``sequence``), which other types use differently."""

    type: u8
    code: u8
    check: be16
    id: be16
    sequence: be16


class ICMPv6(Struct):
    """ICMPv6 header (``struct icmp6hdr``, 8 bytes), echo view as for :class:`ICMP`."""

    type: u8
    code: u8
    check: be16
    id: be16
    sequence: be16


# -- checksums (user space) --------------------------------------------------------------


def ones_complement_sum(data: bytes | bytearray | memoryview) -> int:
    """The 16-bit one's complement sum of ``data`` read as big-endian words,
    an odd last byte padded with zero (RFC 1071)."""
    data = bytes(data)
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The Internet checksum of ``data`` (RFC 1071), a 16-bit number to store
    big-endian. Summing data that includes its correct checksum gives 0."""
    return ~ones_complement_sum(data) & 0xFFFF


def update_checksum(check: int, old: bytes, new: bytes) -> int:
    """``check`` after the bytes ``old`` of the covered data became ``new``
    (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')), without re-reading the rest.

    ``old`` and ``new`` are the same even number of bytes, aligned to a
    16-bit boundary of the checksummed data (a port, an address, a TTL and
    the byte beside it).
    """
    if len(old) != len(new) or len(old) % 2:
        raise ValueError("old and new must be the same even number of bytes")
    words = [~check & 0xFFFF]
    for i in range(0, len(old), 2):
        words.append(~int.from_bytes(old[i : i + 2], "big") & 0xFFFF)
        words.append(int.from_bytes(new[i : i + 2], "big"))
    return ~ones_complement_sum(b"".join(w.to_bytes(2, "big") for w in words)) & 0xFFFF


def ipv4_pseudo_header(saddr: int, daddr: int, protocol: int, length: int) -> bytes:
    """The IPv4 pseudo-header TCP and UDP checksums cover (RFC 793, RFC 768)."""
    return (
        saddr.to_bytes(4, "big") + daddr.to_bytes(4, "big")
        + bytes((0, protocol)) + length.to_bytes(2, "big")
    )


def ipv6_pseudo_header(saddr: bytes, daddr: bytes, nexthdr: int, length: int) -> bytes:
    """The IPv6 pseudo-header upper-layer checksums cover (RFC 8200, 8.1)."""
    return bytes(saddr) + bytes(daddr) + length.to_bytes(4, "big") + bytes((0, 0, 0, nexthdr))


# -- packet builders (user space, for tests) --------------------------------------------

MacAddress = str | bytes | Iterable[int]
IPv4Address = str | int | ipaddress.IPv4Address
IPv6Address = str | bytes | ipaddress.IPv6Address

DEFAULT_SRC_MAC = "02:00:00:00:00:01"
DEFAULT_DST_MAC = "02:00:00:00:00:02"


def mac_bytes(mac: MacAddress) -> bytes:
    """``"02:00:00:00:00:01"``, 6 bytes or 6 integers as 6 bytes."""
    if isinstance(mac, str):
        raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    else:
        raw = bytes(mac)
    if len(raw) != ETH_ALEN:
        raise ValueError(f"a MAC address has 6 bytes, got {mac!r}")
    return raw


def ipv4_int(address: IPv4Address) -> int:
    """``"10.0.0.1"``, an ``IPv4Address`` or a number as the 32-bit number."""
    return int(ipaddress.IPv4Address(address))


def ipv6_bytes(address: IPv6Address) -> bytes:
    """``"fd00::1"``, an ``IPv6Address`` or 16 bytes as 16 bytes."""
    if isinstance(address, bytes):
        if len(address) != 16:
            raise ValueError(f"an IPv6 address has 16 bytes, got {len(address)}")
        return address
    return ipaddress.IPv6Address(address).packed


def build_ethernet(
    proto: int,
    payload: bytes,
    *,
    src_mac: MacAddress = DEFAULT_SRC_MAC,
    dst_mac: MacAddress = DEFAULT_DST_MAC,
    vlan_id: int | None = None,
) -> bytes:
    """An Ethernet frame carrying ``payload`` of EtherType ``proto``, with an
    802.1Q tag when ``vlan_id`` is given. No padding and no FCS: XDP and tc
    programs see frames without either."""
    eth = Ethernet(dst=mac_bytes(dst_mac), src=mac_bytes(src_mac), proto=proto)
    if vlan_id is None:
        return bytes(eth) + payload
    eth.proto = ETH_P_8021Q
    return bytes(eth) + bytes(Vlan(tci=vlan_id & VLAN_VID_MASK, proto=proto)) + payload


def build_ipv4(
    protocol: int,
    payload: bytes,
    *,
    saddr: IPv4Address = "10.0.0.1",
    daddr: IPv4Address = "10.0.0.2",
    ttl: int = 64,
    ident: int = 0,
    frag_off: int = IP_DF,
    **ethernet: Any,
) -> bytes:
    """An Ethernet frame with an IPv4 header (checksum filled in) and ``payload``."""
    header = IPv4(
        version_ihl=0x45, tot_len=IPv4.size + len(payload), id=ident, frag_off=frag_off,
        ttl=ttl, protocol=protocol, saddr=ipv4_int(saddr), daddr=ipv4_int(daddr),
    )
    header.check = checksum(bytes(header))
    return build_ethernet(ETH_P_IP, bytes(header) + payload, **ethernet)


def build_ipv6(
    nexthdr: int,
    payload: bytes,
    *,
    saddr: IPv6Address = "fd00::1",
    daddr: IPv6Address = "fd00::2",
    hop_limit: int = 64,
    **ethernet: Any,
) -> bytes:
    """An Ethernet frame with an IPv6 header and ``payload``."""
    header = IPv6(
        version_class_flow=6 << 28, payload_len=len(payload), nexthdr=nexthdr,
        hop_limit=hop_limit, saddr=ipv6_bytes(saddr), daddr=ipv6_bytes(daddr),
    )
    return build_ethernet(ETH_P_IPV6, bytes(header) + payload, **ethernet)


def _udp(sport: int, dport: int, payload: bytes, pseudo_header: bytes) -> bytes:
    header = UDP(sport=sport, dport=dport, len=UDP.size + len(payload))
    # 0 means "no checksum" in UDP, so a computed 0 is sent as 0xFFFF.
    header.check = checksum(pseudo_header + bytes(header) + payload) or 0xFFFF
    return bytes(header) + payload


def _tcp(sport: int, dport: int, flags: int, seq: int, ack_seq: int, window: int,
         payload: bytes, pseudo_header: bytes) -> bytes:
    header = TCP(sport=sport, dport=dport, seq=seq, ack_seq=ack_seq,
                 data_offset=(TCP.size // 4) << 4, flags=flags, window=window)
    header.check = checksum(pseudo_header + bytes(header) + payload)
    return bytes(header) + payload


def build_udp_ipv4(
    payload: bytes = b"", *, sport: int = 12345, dport: int = 53,
    saddr: IPv4Address = "10.0.0.1", daddr: IPv4Address = "10.0.0.2", **options: Any,
) -> bytes:
    """A complete Ethernet/IPv4/UDP frame; ``options`` go to :func:`build_ipv4`
    (``ttl``, ``frag_off``) and :func:`build_ethernet` (``src_mac``, ``vlan_id``)."""
    pseudo = ipv4_pseudo_header(ipv4_int(saddr), ipv4_int(daddr), IPPROTO_UDP,
                                UDP.size + len(payload))
    segment = _udp(sport, dport, payload, pseudo)
    return build_ipv4(IPPROTO_UDP, segment, saddr=saddr, daddr=daddr, **options)


def build_tcp_ipv4(
    payload: bytes = b"", *, sport: int = 12345, dport: int = 80, flags: int = TCP_SYN,
    seq: int = 1, ack_seq: int = 0, window: int = 65535,
    saddr: IPv4Address = "10.0.0.1", daddr: IPv4Address = "10.0.0.2", **options: Any,
) -> bytes:
    """A complete Ethernet/IPv4/TCP frame (a SYN unless ``flags`` says otherwise)."""
    pseudo = ipv4_pseudo_header(ipv4_int(saddr), ipv4_int(daddr), IPPROTO_TCP,
                                TCP.size + len(payload))
    segment = _tcp(sport, dport, flags, seq, ack_seq, window, payload, pseudo)
    return build_ipv4(IPPROTO_TCP, segment, saddr=saddr, daddr=daddr, **options)


def build_icmp_echo_ipv4(
    payload: bytes = b"", *, ident: int = 1, sequence: int = 1, reply: bool = False,
    **options: Any,
) -> bytes:
    """A complete Ethernet/IPv4/ICMP echo request (or reply) frame."""
    header = ICMP(type=ICMP_ECHOREPLY if reply else ICMP_ECHO, id=ident, sequence=sequence)
    header.check = checksum(bytes(header) + payload)
    return build_ipv4(IPPROTO_ICMP, bytes(header) + payload, **options)


def build_udp_ipv6(
    payload: bytes = b"", *, sport: int = 12345, dport: int = 53,
    saddr: IPv6Address = "fd00::1", daddr: IPv6Address = "fd00::2", **options: Any,
) -> bytes:
    """A complete Ethernet/IPv6/UDP frame; ``options`` as for :func:`build_ipv6`."""
    pseudo = ipv6_pseudo_header(ipv6_bytes(saddr), ipv6_bytes(daddr), IPPROTO_UDP,
                                UDP.size + len(payload))
    segment = _udp(sport, dport, payload, pseudo)
    return build_ipv6(IPPROTO_UDP, segment, saddr=saddr, daddr=daddr, **options)


def build_tcp_ipv6(
    payload: bytes = b"", *, sport: int = 12345, dport: int = 80, flags: int = TCP_SYN,
    seq: int = 1, ack_seq: int = 0, window: int = 65535,
    saddr: IPv6Address = "fd00::1", daddr: IPv6Address = "fd00::2", **options: Any,
) -> bytes:
    """A complete Ethernet/IPv6/TCP frame."""
    pseudo = ipv6_pseudo_header(ipv6_bytes(saddr), ipv6_bytes(daddr), IPPROTO_TCP,
                                TCP.size + len(payload))
    segment = _tcp(sport, dport, flags, seq, ack_seq, window, payload, pseudo)
    return build_ipv6(IPPROTO_TCP, segment, saddr=saddr, daddr=daddr, **options)


def build_icmpv6_echo(
    payload: bytes = b"", *, ident: int = 1, sequence: int = 1, reply: bool = False,
    saddr: IPv6Address = "fd00::1", daddr: IPv6Address = "fd00::2", **options: Any,
) -> bytes:
    """A complete Ethernet/IPv6/ICMPv6 echo request (or reply) frame."""
    header = ICMPv6(type=ICMPV6_ECHO_REPLY if reply else ICMPV6_ECHO_REQUEST,
                    id=ident, sequence=sequence)
    pseudo = ipv6_pseudo_header(ipv6_bytes(saddr), ipv6_bytes(daddr), IPPROTO_ICMPV6,
                                ICMPv6.size + len(payload))
    header.check = checksum(pseudo + bytes(header) + payload)
    segment = bytes(header) + payload
    return build_ipv6(IPPROTO_ICMPV6, segment, saddr=saddr, daddr=daddr, **options)


def build_arp(
    *, op: int = ARPOP_REQUEST, sender_mac: MacAddress = DEFAULT_SRC_MAC,
    sender_ip: IPv4Address = "10.0.0.1", target_mac: MacAddress = bytes(6),
    target_ip: IPv4Address = "10.0.0.2", **ethernet: Any,
) -> bytes:
    """A complete Ethernet/ARP frame (a request unless ``op`` says otherwise),
    broadcast unless ``dst_mac`` is given."""
    body = Arp(
        hardware_type=ARPHRD_ETHER, protocol_type=ETH_P_IP, hardware_len=ETH_ALEN,
        protocol_len=4, op=op, sender_mac=mac_bytes(sender_mac), sender_ip=ipv4_int(sender_ip),
        target_mac=mac_bytes(target_mac), target_ip=ipv4_int(target_ip),
    )
    ethernet.setdefault("dst_mac", "ff:ff:ff:ff:ff:ff")
    ethernet.setdefault("src_mac", sender_mac)
    return build_ethernet(ETH_P_ARP, bytes(body), **ethernet)


__all__ = [
    "ARPHRD_ETHER",
    "ARPOP_REPLY",
    "ARPOP_REQUEST",
    "ETH_ALEN",
    "ETH_HLEN",
    "ETH_P_8021AD",
    "ETH_P_8021Q",
    "ETH_P_ARP",
    "ETH_P_IP",
    "ETH_P_IPV6",
    "ICMP",
    "ICMPV6_DEST_UNREACH",
    "ICMPV6_ECHO_REPLY",
    "ICMPV6_ECHO_REQUEST",
    "ICMP_DEST_UNREACH",
    "ICMP_ECHO",
    "ICMP_ECHOREPLY",
    "ICMP_TIME_EXCEEDED",
    "IPPROTO_AH",
    "IPPROTO_DSTOPTS",
    "IPPROTO_ESP",
    "IPPROTO_FRAGMENT",
    "IPPROTO_GRE",
    "IPPROTO_HOPOPTS",
    "IPPROTO_ICMP",
    "IPPROTO_ICMPV6",
    "IPPROTO_IGMP",
    "IPPROTO_IPIP",
    "IPPROTO_IPV6",
    "IPPROTO_NONE",
    "IPPROTO_ROUTING",
    "IPPROTO_SCTP",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "IP_DF",
    "IP_MF",
    "IP_OFFMASK",
    "IP_RF",
    "TCP",
    "TCP_ACK",
    "TCP_CWR",
    "TCP_ECE",
    "TCP_FIN",
    "TCP_PSH",
    "TCP_RST",
    "TCP_SYN",
    "TCP_URG",
    "UDP",
    "VLAN_PRIO_SHIFT",
    "VLAN_VID_MASK",
    "Arp",
    "Ethernet",
    "ICMPv6",
    "IPv4",
    "IPv6",
    "Vlan",
    "build_arp",
    "build_ethernet",
    "build_icmp_echo_ipv4",
    "build_icmpv6_echo",
    "build_ipv4",
    "build_ipv6",
    "build_tcp_ipv4",
    "build_tcp_ipv6",
    "build_udp_ipv4",
    "build_udp_ipv6",
    "checksum",
    "ipv4_int",
    "ipv4_pseudo_header",
    "ipv6_bytes",
    "ipv6_pseudo_header",
    "mac_bytes",
    "ones_complement_sum",
    "update_checksum",
]
