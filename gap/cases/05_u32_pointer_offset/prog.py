"""Destination port of IPv4 packets (IP options allowed), stored in
last_port[0]. The L4 offset is computed from the IP header length and
handed to a helper function, as parsers that pass offsets between stages do.

Offsets are plain integers; there is no pointer to narrow.
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, be16, u32, xdp
from pykex.net import Ethernet, IPv4

last_port = ArrayMap[u32](max_entries=1)


def read_port(ctx: XdpContext, l4_offset: u32) -> u32:
    return u32(ctx.packet.read(l4_offset + 2, be16))


@xdp(on_error=XDP_PASS)
def dest_port(ctx: XdpContext) -> int:
    ip = ctx.packet.read(Ethernet.size, IPv4)
    l4_offset = Ethernet.size + u32(ip.version_ihl & 0x0F) * 4
    last_port[0] = read_port(ctx, l4_offset)
    return XDP_PASS
