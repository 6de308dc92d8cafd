import struct

from ...packets import HEADERS_LEN, internet_checksum, tcp_packet_of_size
from .. import XDP_PASS, MapAccess, Workload, expect

PACKET = tcp_packet_of_size(1500, b"checksum me")


def summed(maps: MapAccess, runs: int) -> None:
    raw = maps.lookup("result", struct.pack("<I", 0)) or bytes(4)
    # The program sums native (little-endian) words, so the checksum's bytes
    # sit in memory in network order: the first two bytes of the u32.
    wanted = struct.pack("!H", internet_checksum(PACKET[HEADERS_LEN:]))
    expect("the payload checksum", raw[:2], wanted)


WORKLOAD = Workload(
    name="checksum",
    title="Internet checksum over a 1,446-byte payload",
    packet=PACKET,
    retval=XDP_PASS,
    check=summed,
)
