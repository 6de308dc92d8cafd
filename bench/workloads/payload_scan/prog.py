"""Drop TCP packets whose payload contains a 4-byte signature, checked at every offset."""

from pykex import XDP_DROP, XDP_PASS, XdpContext, u32, xdp
from pykex.net import ETH_P_IP, IPPROTO_TCP, TCP, Ethernet, IPv4


@xdp(on_error=XDP_PASS)  # a frame too short for its headers passes
def payload_scan(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    ip = ctx.packet.read(Ethernet.size, IPv4)
    if eth.proto != ETH_P_IP or ip.protocol != IPPROTO_TCP or ip.version_ihl & 0x0F != 5:
        return XDP_PASS
    tcp = ctx.packet.read(Ethernet.size + IPv4.size, TCP)
    if tcp.data_offset >> 4 != 5:
        return XDP_PASS
    payload: u32 = Ethernet.size + IPv4.size + TCP.size  # no options: checked above
    for start in range(payload, len(ctx.packet) - 3):
        if ctx.packet[start : start + 4] == b"EVIL":
            return XDP_DROP
    return XDP_PASS
