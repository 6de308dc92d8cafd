"""XDP firewall: drop IPv4 packets from blocked sources, count traffic per protocol.

What it does
    Every IPv4 packet that arrives on the interface is counted per IP
    protocol number (6 is TCP, 17 UDP...): packets and bytes, per CPU, so
    the counting needs no atomic operations. Packets whose source address is
    in ``blocked`` are then dropped; everything else, non-IPv4 traffic
    included, passes. A packet too short for the headers it announces raises
    IndexError inside the program, which passes it (``on_error=XDP_PASS``)
    and reports the exception with its source line.

How to run it
    pykex check examples/firewall.py
    pykex test-run examples/firewall.py           # one UDP/IPv4 test packet

    From Python (as root; the interface must exist)::

        ext = pykex.load("examples/firewall.py")
        ext.blocked[pykex.net.ipv4_int("10.0.0.1")] = 1
        with ext.firewall.attach(interface="veth0"):
            ...
        for proto, per_cpu in ext.stats.items():
            print(proto, sum(c.packets for c in per_cpu), sum(c.bytes for c in per_cpu))
"""

from pykex import XDP_DROP, XDP_PASS, HashMap, PerCpuArray, Struct, XdpContext, u8, u32, u64, xdp
from pykex.net import ETH_P_IP, Ethernet, IPv4


class Counter(Struct):
    packets: u64
    bytes: u64


# IPv4 source addresses (as numbers: 10.0.0.1 is 0x0A000001) to drop; the value is unused.
blocked = HashMap[u32, u8](max_entries=1024)
# Indexed by the IPv4 protocol number.
stats = PerCpuArray[Counter](max_entries=256)


@xdp(on_error=XDP_PASS)
def firewall(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    if eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = ctx.packet.read(Ethernet.size, IPv4)
    counter = stats[ip.protocol]
    counter.packets += 1
    counter.bytes += len(ctx.packet)
    if ip.saddr in blocked:
        return XDP_DROP
    return XDP_PASS
