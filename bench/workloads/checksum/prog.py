"""The Internet checksum (RFC 1071) of the TCP payload, stored for the reader."""

from pykex import XDP_PASS, ArrayMap, XdpContext, u16, u32, xdp
from pykex.net import ETH_P_IP, IPPROTO_TCP, TCP, Ethernet, IPv4

result = ArrayMap[u32](max_entries=1)


@xdp(on_error=XDP_PASS)  # a frame too short for its headers passes
def checksum(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    ip = ctx.packet.read(Ethernet.size, IPv4)
    if eth.proto != ETH_P_IP or ip.protocol != IPPROTO_TCP or ip.version_ihl & 0x0F != 5:
        return XDP_PASS
    tcp = ctx.packet.read(Ethernet.size + IPv4.size, TCP)
    if tcp.data_offset >> 4 != 5:
        return XDP_PASS

    payload: u32 = Ethernet.size + IPv4.size + TCP.size  # no options: checked above
    end = len(ctx.packet)
    total: u32 = 0
    # Words as they sit in memory (host order): the sum's bytes come out in network order.
    for offset in range(payload, end - 1, 2):
        total += ctx.packet.read(offset, u16)
    if (end - payload) % 2 == 1:
        total += ctx.packet[end - 1]  # an odd trailing byte, padded with zero
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    result[0] = u32(u16(~total))
    return XDP_PASS
