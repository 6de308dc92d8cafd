"""Payload checksum: sum the UDP payload (UDP length - 8, rounded down to a
multiple of 4, at most 512 bytes) as little-endian 16-bit words, fold the
sum to 16 bits and store it in payload_csum[0].

The sum is a loop over the checked range, read in place.
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, u16, u32, xdp
from pykex.net import UDP, Ethernet, IPv4

PAYLOAD_OFFSET = Ethernet.size + IPv4.size + UDP.size
MAX_SUMMED = 512

payload_csum = ArrayMap[u32](max_entries=1)


@xdp(on_error=XDP_PASS)
def checksum_payload(ctx: XdpContext) -> int:
    udp = ctx.packet.read(Ethernet.size + IPv4.size, UDP)
    length = (u32(udp.len) - UDP.size) // 4 * 4
    if length > MAX_SUMMED or PAYLOAD_OFFSET + length > len(ctx.packet):
        return XDP_PASS
    total: u32 = 0
    for offset in range(PAYLOAD_OFFSET, PAYLOAD_OFFSET + length, 2):
        total += ctx.packet.read(offset, u16)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    payload_csum[0] = total
    return XDP_PASS
