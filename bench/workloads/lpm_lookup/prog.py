"""Route by destination address: the longest matching prefix gives the verdict."""

from pykex import XDP_PASS, LpmTrie, Struct, XdpContext, be32, u32, xdp
from pykex.net import ETH_P_IP, Ethernet, IPv4


class RouteKey(Struct):
    prefixlen: u32
    addr: be32


routes = LpmTrie[RouteKey, u32](max_entries=1024)  # prefix -> verdict


@xdp(on_error=XDP_PASS)  # a frame too short for its headers passes
def lpm_lookup(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    if eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = ctx.packet.read(Ethernet.size, IPv4)
    verdict = routes.get(RouteKey(prefixlen=32, addr=ip.daddr))
    if verdict is None:
        return XDP_PASS
    return verdict
