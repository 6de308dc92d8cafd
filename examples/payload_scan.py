"""XDP payload scanner: drop packets whose TCP or UDP payload contains a signature.

What it does
    For every IPv4 TCP or UDP packet, the program looks at each byte of the
    payload in turn, to the very end of the packet (1,472 positions in a
    1,500-byte UDP packet), and drops the packet when ``SIGNATURE`` starts
    there. The loop is an ordinary ``for`` over ``range``: no bound to
    invent, no unrolling, whatever the packet size. Matches are counted in
    ``dropped``, scanned packets in ``scanned``. Other traffic passes.

    Scanning every byte is the case the BMC paper (NSDI 2021) shows plain
    eBPF struggling with: the verifier must prove each access of an
    unbounded loop over packet data safe. pykex checks each access as it
    happens instead.

How to run it
    pykex check examples/payload_scan.py
    pykex test-run examples/payload_scan.py --repeat 1000 --packet-hex <frame in hex>

    From Python (as root)::

        ext = pykex.load("examples/payload_scan.py")
        with ext.scan.attach(interface="veth0"):
            ...
        print("dropped", sum(ext.dropped[0]), "of", sum(ext.scanned[0]))
"""

from pykex import XDP_DROP, XDP_PASS, PerCpuArray, XdpContext, u32, u64, xdp
from pykex.net import ETH_P_IP, IPPROTO_TCP, IPPROTO_UDP, TCP, UDP, Ethernet, IPv4

SIGNATURE = b"/etc/passwd"

scanned = PerCpuArray[u64](max_entries=1)
dropped = PerCpuArray[u64](max_entries=1)


def payload_offset(ctx: XdpContext, ip: IPv4, transport: u32) -> u32:
    """Where the TCP or UDP payload starts in the frame."""
    if ip.protocol == IPPROTO_TCP:
        tcp = ctx.packet.read(transport, TCP)
        return transport + u32(tcp.data_offset >> 4) * 4
    return transport + UDP.size


@xdp(on_error=XDP_PASS)
def scan(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    if eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = ctx.packet.read(Ethernet.size, IPv4)
    if ip.protocol != IPPROTO_TCP and ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    start = payload_offset(ctx, ip, Ethernet.size + u32(ip.version_ihl & 0x0F) * 4)
    scanned[0] += 1
    for i in range(start, len(ctx.packet) - len(SIGNATURE) + 1):
        # The first byte decides cheaply; a slice past the end would raise, hence the range.
        if ctx.packet[i] == SIGNATURE[0] and ctx.packet[i : i + len(SIGNATURE)] == SIGNATURE:
            dropped[0] += 1
            return XDP_DROP
    return XDP_PASS
