"""xdpdrop: count packets per IP protocol on an interface, dropping those asked for.

After BCC's examples/networking/xdp/xdp_drop_count.py, which counts packets
per IP protocol in an XDP program and drops them all; here only the
protocols given with ``-d`` are dropped (a blocklist), the rest pass.

    pykex run tools/xdpdrop.py --iface veth0              # count only
    pykex run tools/xdpdrop.py --iface veth0 -d icmp -d 17  # drop ICMP and UDP
    pykex run tools/xdpdrop.py --iface veth0 -i 2         # print every 2 seconds

Output: each interval, one ``PROTO: N pkt/s`` line per IP protocol seen
(BCC's ``{}: {} pkt/s``), with ``(dropped)`` after blocked ones.
"""

import argparse

from pykex import (
    XDP_DROP,
    XDP_PASS,
    HashMap,
    PerCpuArray,
    Struct,
    XdpContext,
    be16,
    u8,
    u32,
    u64,
    xdp,
)

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_HLEN = 14


class Counter(Struct):
    packets: u64
    bytes: u64


counts = PerCpuArray[Counter](max_entries=256)  # by IP protocol number
blocked = HashMap[u32, u8](max_entries=256)  # IP protocol numbers to drop


@xdp(on_error=XDP_PASS)
def count_and_drop(ctx: XdpContext) -> int:
    ether_type = ctx.packet.read(12, be16)
    protocol: u32 = 0
    if ether_type == ETH_P_IP:
        protocol = u32(ctx.packet[ETH_HLEN + 9])
    elif ether_type == ETH_P_IPV6:
        protocol = u32(ctx.packet[ETH_HLEN + 6])
    else:
        return XDP_PASS
    counter = counts[protocol]
    counter.packets += 1
    counter.bytes += len(ctx.packet)
    if protocol in blocked:
        return XDP_DROP
    return XDP_PASS


def protocol_numbers() -> dict[str, int]:
    return {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "icmpv6": 58, "sctp": 132}


def options(parser: argparse.ArgumentParser) -> None:
    known = protocol_numbers()

    def protocol(text: str) -> int:
        number = known.get(text.lower()) if not text.isdigit() else int(text)
        if number is None or not 0 <= number < 256:
            raise argparse.ArgumentTypeError(
                f"not an IP protocol: {text!r} (a number or {', '.join(known)})")
        return number

    parser.add_argument("-d", "--drop", action="append", type=protocol, default=[],
                        help="drop packets of this IP protocol (name or number; repeatable)")
    parser.add_argument("-i", "--interval", type=float, default=1.0,
                        help="seconds between outputs (default 1)")


def main(ext, args) -> None:
    import json

    session = args.session
    for number in args.drop:
        ext.blocked[number] = 1
    names = {number: name.upper() for name, number in protocol_numbers().items()}
    session.note("Printing packets per IP protocol, hit CTRL+C to stop")
    previous = {}
    for tick in session.ticks():
        seen = {}
        for protocol, per_cpu in ext.counts.items():
            packets = sum(counter.packets for counter in per_cpu)
            if packets:
                seen[protocol] = packets
        for protocol, packets in sorted(seen.items()):
            rate = (packets - previous.get(protocol, 0)) / args.interval
            name = names.get(protocol, str(protocol))
            dropped = protocol in args.drop
            if args.json:
                print(json.dumps({"protocol": protocol, "name": name, "packets": packets,
                                  "pps": rate, "dropped": dropped, "interval": tick.number}))
            else:
                print(f"{name}: {rate:.0f} pkt/s" + (" (dropped)" if dropped else ""))
        previous = seen
        if tick.last:
            break
