"""Test packets: Ethernet + IPv4 + TCP/UDP frames with valid checksums."""

from __future__ import annotations

import ipaddress
import struct

ETH_P_IP = 0x0800
IPPROTO_TCP = 6
IPPROTO_UDP = 17
ETH_HLEN, IP_HLEN, TCP_HLEN, UDP_HLEN = 14, 20, 20, 8
HEADERS_LEN = ETH_HLEN + IP_HLEN + TCP_HLEN  # where a TCP payload starts

_SRC_MAC = bytes.fromhex("02000000000a")
_DST_MAC = bytes.fromhex("02000000000b")


def internet_checksum(data: bytes) -> int:
    """RFC 1071: the ones' complement of the ones' complement sum of 16-bit words
    in network order (an odd last byte is padded with zero)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _addr(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def _ipv4(src: str, dst: str, protocol: int, payload_len: int) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45, 0, IP_HLEN + payload_len, 1, 0x4000, 64, protocol, 0, _addr(src), _addr(dst),
    )
    return header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]


def _pseudo_header(src: str, dst: str, protocol: int, length: int) -> bytes:
    return _addr(src) + _addr(dst) + struct.pack("!BBH", 0, protocol, length)


def tcp_packet(
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    sport: int = 40000,
    dport: int = 80,
    payload: bytes = b"",
) -> bytes:
    """An Ethernet frame carrying a TCP segment (ACK|PSH, no options) with ``payload``."""
    segment = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, 0x18, 65535, 0, 0)
    checksum = internet_checksum(
        _pseudo_header(src, dst, IPPROTO_TCP, len(segment) + len(payload)) + segment + payload
    )
    segment = segment[:16] + struct.pack("!H", checksum) + segment[18:]
    ip = _ipv4(src, dst, IPPROTO_TCP, len(segment) + len(payload))
    return _ethernet(ip + segment + payload)


def udp_packet(
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    sport: int = 40000,
    dport: int = 53,
    payload: bytes = b"",
) -> bytes:
    """An Ethernet frame carrying a UDP datagram with ``payload``."""
    length = UDP_HLEN + len(payload)
    datagram = struct.pack("!HHHH", sport, dport, length, 0) + payload
    checksum = internet_checksum(_pseudo_header(src, dst, IPPROTO_UDP, length) + datagram)
    datagram = datagram[:6] + struct.pack("!H", checksum or 0xFFFF) + datagram[8:]
    return _ethernet(_ipv4(src, dst, IPPROTO_UDP, length) + datagram)


def _ethernet(body: bytes) -> bytes:
    return _DST_MAC + _SRC_MAC + struct.pack("!H", ETH_P_IP) + body


def filler(length: int) -> bytes:
    """``length`` bytes of lowercase text: never contains an upper-case signature."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz"
    return bytes(alphabet[i % len(alphabet)] for i in range(length))


def tcp_packet_of_size(size: int, payload_tail: bytes = b"", **fields: object) -> bytes:
    """A TCP frame of exactly ``size`` bytes whose payload ends with ``payload_tail``."""
    room = size - HEADERS_LEN - len(payload_tail)
    if room < 0:
        raise ValueError(f"a {size}-byte frame has no room for a {len(payload_tail)}-byte tail")
    return tcp_packet(payload=filler(room) + payload_tail, **fields)  # type: ignore[arg-type]
