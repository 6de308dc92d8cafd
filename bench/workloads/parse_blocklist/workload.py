import ipaddress
import struct

from ...packets import tcp_packet, udp_packet
from .. import XDP_DROP, XDP_PASS, Case, MapAccess, Workload

BLOCKED = {"src": "10.0.0.1", "dst": "10.0.0.2", "sport": 40000, "dport": 80}
OTHER_FLOWS = 200  # the blocklist is not a one-entry table


def flow_key(src: str, dst: str, sport: int, dport: int) -> bytes:
    """struct flow: addresses and ports as they sit in the packet (network order)."""
    addresses = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    return addresses + struct.pack("!HH", sport, dport)


def fill_blocklist(maps: MapAccess) -> None:
    maps.update("blocklist", flow_key(**BLOCKED), b"\x01")
    for n in range(OTHER_FLOWS):
        maps.update("blocklist", flow_key(f"192.0.2.{n % 250}", "10.0.0.2", 1024 + n, 22), b"\x01")


WORKLOAD = Workload(
    name="parse_blocklist",
    title="Ethernet/IPv4/TCP parse + hash-map blocklist lookup",
    packet=tcp_packet(**BLOCKED, payload=bytes(10)),  # type: ignore[arg-type]
    retval=XDP_DROP,
    prepare=fill_blocklist,
    cases=(
        Case("the same hosts on another port", tcp_packet("10.0.0.1", "10.0.0.2", 40000, 443),
             XDP_PASS),
        Case("a UDP packet of the blocked flow", udp_packet("10.0.0.1", "10.0.0.2", 40000, 80),
             XDP_PASS),
    ),
)
