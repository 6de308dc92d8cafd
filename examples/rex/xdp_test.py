"""XDP test: parse, drop, bounce (a port of Rex's ``xdp_test``).

What it does
    Parses Ethernet, IPv4 and UDP headers with checked reads. UDP datagrams
    to a port listed in ``blocked_ports`` are dropped; UDP datagrams to the
    echo port (7) are sent back where they came from (``XDP_TX``) with the
    MAC addresses, IPv4 addresses and UDP ports swapped; everything else
    passes. ``stats`` counts each verdict.

How to run it
    ext = pykex.load("examples/rex/xdp_test.py")
    ext.blocked_ports[9] = 1
    with ext.xdp_filter.attach(interface="veth0"):
        ...
"""

from pykex import (
    XDP_DROP,
    XDP_PASS,
    XDP_TX,
    ArrayMap,
    HashMap,
    XdpContext,
    be16,
    be32,
    u8,
    u16,
    u32,
    u64,
    xdp,
)
from pykex.net import ETH_P_IP, IPPROTO_UDP, UDP, Ethernet, IPv4

ECHO_PORT = 7

blocked_ports = HashMap[u16, u8](max_entries=64)
stats = ArrayMap[u64](max_entries=8)  # indexed by verdict


def swap_addresses(ctx: XdpContext, eth: Ethernet, ip: IPv4, udp: UDP, l4: u32) -> None:
    for i in range(6):
        ctx.packet[i] = eth.src[i]
        ctx.packet[6 + i] = eth.dst[i]
    ctx.packet.write(Ethernet.size + 12, ip.daddr, be32)
    ctx.packet.write(Ethernet.size + 16, ip.saddr, be32)
    ctx.packet.write(l4, udp.dport, be16)
    ctx.packet.write(l4 + 2, udp.sport, be16)


def verdict(ctx: XdpContext) -> u32:
    eth = ctx.packet.read(0, Ethernet)
    if eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = ctx.packet.read(Ethernet.size, IPv4)
    if ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    l4 = u32(Ethernet.size) + u32(ip.version_ihl & 0x0F) * 4
    udp = ctx.packet.read(l4, UDP)
    if udp.dport in blocked_ports:
        return XDP_DROP
    if udp.dport == ECHO_PORT:
        swap_addresses(ctx, eth, ip, udp, l4)
        return XDP_TX
    return XDP_PASS


@xdp(on_error=XDP_DROP)
def xdp_filter(ctx: XdpContext) -> int:
    result = verdict(ctx)
    stats[result] += 1
    return result
