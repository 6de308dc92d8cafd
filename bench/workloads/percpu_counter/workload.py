import struct

from ...packets import IPPROTO_TCP, IPPROTO_UDP, tcp_packet, udp_packet
from .. import XDP_PASS, Case, MapAccess, Workload, expect

PACKET = tcp_packet(payload=bytes(10))
COUNTER = struct.Struct("<QQ")  # packets, bytes


def counted(maps: MapAccess, runs: int) -> None:
    per_cpu = [COUNTER.unpack(v) for v in maps.per_cpu("stats", struct.pack("<I", IPPROTO_TCP))]
    expect("packets counted for TCP (all CPUs)", sum(p for p, _ in per_cpu), runs)
    expect("bytes counted for TCP (all CPUs)", sum(b for _, b in per_cpu), runs * len(PACKET))
    udp = maps.per_cpu("stats", struct.pack("<I", IPPROTO_UDP))
    expect("packets counted for UDP", sum(COUNTER.unpack(v)[0] for v in udp), 0)


WORKLOAD = Workload(
    name="percpu_counter",
    title="per-CPU counter update (packets, bytes per IP protocol)",
    packet=PACKET,
    retval=XDP_PASS,
    check=counted,
    cases=(Case("a UDP packet", udp_packet(), XDP_PASS),),
)
