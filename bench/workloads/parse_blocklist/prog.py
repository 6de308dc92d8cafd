"""Parse Ethernet, IPv4 and TCP; drop the flow if it is on the blocklist."""

from pykex import XDP_DROP, XDP_PASS, HashMap, Struct, XdpContext, be16, be32, u8, u32, xdp
from pykex.net import ETH_P_IP, IPPROTO_TCP, TCP, Ethernet, IPv4


class Flow(Struct):
    saddr: be32
    daddr: be32
    sport: be16
    dport: be16


blocklist = HashMap[Flow, u8](max_entries=1024)  # the value is unused


@xdp(on_error=XDP_PASS)  # a frame too short for its headers passes
def parse_blocklist(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    if eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = ctx.packet.read(Ethernet.size, IPv4)
    header_length = u32(ip.version_ihl & 0x0F) * 4
    if ip.protocol != IPPROTO_TCP or header_length < IPv4.size:
        return XDP_PASS
    tcp = ctx.packet.read(Ethernet.size + header_length, TCP)
    flow = Flow(saddr=ip.saddr, daddr=ip.daddr, sport=tcp.sport, dport=tcp.dport)
    if flow in blocklist:
        return XDP_DROP
    return XDP_PASS
