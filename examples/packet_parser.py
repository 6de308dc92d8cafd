"""XDP packet parser: count packets per transport protocol and destination port class.

What it does
    Parses every frame: Ethernet, up to two VLAN tags (802.1ad outside,
    802.1Q inside), then IPv4 (options skipped by the header length) or IPv6
    (hop-by-hop, routing, fragment and destination-options headers walked),
    then TCP or UDP. It counts, per CPU:

    * ``protocols[p]``: IP packets whose transport protocol is ``p``
      (``IPPROTO_TCP`` 6, ``IPPROTO_UDP`` 17, ``IPPROTO_ICMPV6`` 58...);
    * ``port_classes[c]``: TCP and UDP packets by destination port class,
      ``WELL_KNOWN`` (0-1023), ``REGISTERED`` (1024-49151) or ``DYNAMIC``
      (49152-65535);
    * ``malformed[0]``: packets dropped because a header is inconsistent
      (wrong IP version, IPv4 header length under 20 bytes or beyond the
      total length, TCP data offset under 20 bytes, UDP length under 8).

    A header cut short by the end of the packet makes ``ctx.packet.read``
    raise IndexError, and the program's ``on_error`` verdict drops the packet
    too; those drops show in the extension's exception counters. Non-IP
    frames (ARP...) pass uncounted; IPv4 and IPv6 fragments after the first
    count by protocol only, as they carry no transport header.

How to run it
    pykex check examples/packet_parser.py
    pykex test-run examples/packet_parser.py --packet-hex <frame in hex>

    From Python (as root)::

        ext = pykex.load("examples/packet_parser.py")
        with ext.parse.attach(interface="veth0"):
            ...
        print("tcp", sum(ext.protocols[IPPROTO_TCP]))
        print("malformed", sum(ext.malformed[0]))
"""

from pykex import (
    XDP_DROP,
    XDP_PASS,
    PerCpuArray,
    Struct,
    XdpContext,
    be16,
    be32,
    u8,
    u32,
    u64,
    xdp,
)
from pykex.net import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_IPV6,
    IP_OFFMASK,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP,
    UDP,
    Ethernet,
    IPv4,
    IPv6,
    Vlan,
)

WELL_KNOWN = 0
REGISTERED = 1
DYNAMIC = 2

MAX_VLAN_TAGS = 2
MAX_IPV6_EXTENSIONS = 8

protocols = PerCpuArray[u64](max_entries=256)
port_classes = PerCpuArray[u64](max_entries=3)
malformed = PerCpuArray[u64](max_entries=1)


class IPv6Extension(Struct):
    """The first two bytes every IPv6 extension header starts with."""

    nexthdr: u8
    length: u8  # in 8-byte units, not counting the first 8 bytes


class IPv6Fragment(Struct):
    """The fragment header (8 bytes; its reserved length byte is not a length)."""

    nexthdr: u8
    reserved: u8
    offset_flags: be16  # fragment offset in 8-byte units << 3, then 2 reserved bits and M
    ident: be32


IPV6_OFFSET_MASK = 0xFFF8


def is_ipv6_extension(header: u8) -> bool:
    return header in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_DSTOPTS)


def port_class(port: u32) -> u32:
    if port < 1024:
        return WELL_KNOWN
    if port < 49152:
        return REGISTERED
    return DYNAMIC


def drop_malformed() -> u32:
    malformed[0] += 1
    return XDP_DROP


@xdp(on_error=XDP_DROP)
def parse(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    proto = eth.proto
    offset: u32 = Ethernet.size
    for _ in range(MAX_VLAN_TAGS):
        if proto != ETH_P_8021Q and proto != ETH_P_8021AD:
            break
        tag = ctx.packet.read(offset, Vlan)
        proto = tag.proto
        offset += Vlan.size

    transport: u8 = 0
    has_ports = True
    if proto == ETH_P_IP:
        ip = ctx.packet.read(offset, IPv4)
        header_length = u32(ip.version_ihl & 0x0F) * 4
        if ip.version_ihl >> 4 != 4 or header_length < IPv4.size:
            return drop_malformed()
        if ip.tot_len < header_length:
            return drop_malformed()
        transport = ip.protocol
        # Only the first fragment carries the transport header.
        has_ports = ip.frag_off & IP_OFFMASK == 0
        offset += header_length
    elif proto == ETH_P_IPV6:
        ip6 = ctx.packet.read(offset, IPv6)
        if ip6.version_class_flow >> 28 != 6:
            return drop_malformed()
        transport = ip6.nexthdr
        offset += IPv6.size
        for _ in range(MAX_IPV6_EXTENSIONS):
            if not is_ipv6_extension(transport):
                break
            if transport == IPPROTO_FRAGMENT:
                fragment = ctx.packet.read(offset, IPv6Fragment)
                has_ports = fragment.offset_flags & IPV6_OFFSET_MASK == 0
                transport = fragment.nexthdr
                offset += IPv6Fragment.size
            else:
                extension = ctx.packet.read(offset, IPv6Extension)
                transport = extension.nexthdr
                offset += (u32(extension.length) + 1) * 8
    else:
        return XDP_PASS

    protocols[transport] += 1
    if not has_ports:
        return XDP_PASS
    if transport == IPPROTO_TCP:
        tcp = ctx.packet.read(offset, TCP)
        if tcp.data_offset >> 4 < 5:
            return drop_malformed()
        port_classes[port_class(tcp.dport)] += 1
    elif transport == IPPROTO_UDP:
        udp = ctx.packet.read(offset, UDP)
        if udp.len < UDP.size:
            return drop_malformed()
        port_classes[port_class(udp.dport)] += 1
    return XDP_PASS
