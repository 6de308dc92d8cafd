import ipaddress
import struct

from ...packets import tcp_packet
from .. import XDP_DROP, XDP_PASS, XDP_TX, Case, MapAccess, Workload

# Nested prefixes with different verdicts, so only the longest match is right.
ROUTES = {
    "10.0.0.0/8": XDP_DROP,
    "10.1.0.0/16": XDP_PASS,
    "10.1.2.0/24": XDP_TX,
}
FILLER = [f"100.64.{n}.0/24" for n in range(256)]  # a table of realistic size


def route_key(prefix: str) -> bytes:
    """struct route_key: the prefix length (host order), then the address (network order)."""
    network = ipaddress.IPv4Network(prefix)
    return struct.pack("<I", network.prefixlen) + network.network_address.packed


def fill_routes(maps: MapAccess) -> None:
    for prefix, verdict in ROUTES.items():
        maps.update("routes", route_key(prefix), struct.pack("<I", verdict))
    for prefix in FILLER:
        maps.update("routes", route_key(prefix), struct.pack("<I", XDP_DROP))


def to(address: str) -> bytes:
    return tcp_packet(dst=address, payload=bytes(10))


WORKLOAD = Workload(
    name="lpm_lookup",
    title="LPM trie lookup of the destination address",
    packet=to("10.1.2.3"),
    retval=XDP_TX,
    prepare=fill_routes,
    cases=(
        Case("a /16 match", to("10.1.9.9"), XDP_PASS),
        Case("a /8 match", to("10.9.9.9"), XDP_DROP),
        Case("no match", to("172.16.0.1"), XDP_PASS),
    ),
)
