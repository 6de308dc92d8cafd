"""TCP MSS check behind a full header walk: Ethernet, up to two VLAN tags,
IPv4 (with options) or IPv6 (with up to six extension headers), then every
TCP option. The MSS option's value goes to seen_mss[0]; an MSS below 536
drops the packet. A header cut short by the packet's end passes it.

One program: no tail call, no program array, no scratch map.
"""

from pykex import XDP_DROP, XDP_PASS, ArrayMap, Struct, XdpContext, be16, u8, u32, xdp
from pykex.net import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_IPV6,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    TCP,
    Ethernet,
    IPv4,
    IPv6,
    Vlan,
)

MAX_VLANS = 2
MAX_EXT_HEADERS = 6
OPTION_END = 0
OPTION_NOP = 1
OPTION_MSS = 2
MIN_MSS = 536

seen_mss = ArrayMap[u32](max_entries=1)


class IPv6Extension(Struct):
    nexthdr: u8
    length: u8  # in 8-byte units, not counting the first 8 bytes


def is_ext_header(header: u8) -> bool:
    return header in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT)


@xdp(on_error=XDP_PASS)
def tcp_options(ctx: XdpContext) -> int:
    proto = ctx.packet.read(0, Ethernet).proto
    offset: u32 = Ethernet.size
    for _ in range(MAX_VLANS):
        if proto != ETH_P_8021Q and proto != ETH_P_8021AD:
            break
        proto = ctx.packet.read(offset, Vlan).proto
        offset += Vlan.size

    if proto == ETH_P_IP:
        ip = ctx.packet.read(offset, IPv4)
        header_words = u32(ip.version_ihl & 0x0F)
        if header_words < 5:
            return XDP_PASS
        l4 = ip.protocol
        offset += header_words * 4
    elif proto == ETH_P_IPV6:
        l4 = ctx.packet.read(offset, IPv6).nexthdr
        offset += IPv6.size
        for _ in range(MAX_EXT_HEADERS):
            if not is_ext_header(l4):
                break
            ext = ctx.packet.read(offset, IPv6Extension)
            if l4 == IPPROTO_FRAGMENT:
                offset += 8
            else:
                offset += (u32(ext.length) + 1) * 8
            l4 = ext.nexthdr
    else:
        return XDP_PASS
    if l4 != IPPROTO_TCP:
        return XDP_PASS

    tcp = ctx.packet.read(offset, TCP)
    options_end = offset + u32(tcp.data_offset >> 4) * 4
    offset += TCP.size
    while offset < options_end:
        kind = ctx.packet[offset]
        if kind == OPTION_END:
            break
        if kind == OPTION_NOP:
            offset += 1
            continue
        length = ctx.packet[offset + 1]
        if length < 2:
            return XDP_PASS
        if kind == OPTION_MSS and length == 4:
            mss = u32(ctx.packet.read(offset + 2, be16))
            seen_mss[0] = mss
            if mss < MIN_MSS:
                return XDP_DROP
        offset += length
    return XDP_PASS
