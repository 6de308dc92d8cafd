"""Count packets and bytes per IP protocol in a per-CPU array."""

from pykex import XDP_PASS, PerCpuArray, Struct, XdpContext, u64, xdp
from pykex.net import ETH_P_IP, Ethernet, IPv4


class Counter(Struct):
    packets: u64
    bytes: u64


stats = PerCpuArray[Counter](max_entries=256)  # indexed by the IP protocol number


@xdp(on_error=XDP_PASS)  # a frame too short for its headers passes uncounted
def percpu_counter(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    if eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = ctx.packet.read(Ethernet.size, IPv4)
    counter = stats[ip.protocol]
    counter.packets += 1
    counter.bytes += len(ctx.packet)
    return XDP_PASS
