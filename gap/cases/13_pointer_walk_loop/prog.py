"""Trailer check: sum the UDP payload as big-endian 16-bit words up to the
end of the packet (an odd last byte is ignored), fold the sum to 16 bits
(ones' complement) and drop the packet if it is 0xffff.

The loop runs to the packet's end: no invented bound.
"""

from pykex import XDP_DROP, XDP_PASS, XdpContext, be16, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
MARKER = 0xFFFF


@xdp(on_error=XDP_PASS)
def payload_sum(ctx: XdpContext) -> int:
    total: u32 = 0
    offset: u32 = PAYLOAD_OFFSET
    while offset + 2 <= len(ctx.packet):
        total += ctx.packet.read(offset, be16)
        offset += 2
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return XDP_DROP if total == MARKER else XDP_PASS
