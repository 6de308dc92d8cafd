"""Last byte of a variable-length option: payload byte 0 is the option's
length (1..64) and 64 bytes follow it; the option's last byte (payload
offset `length`) is stored in last_option_byte[0].
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
MAX_OPTION = 64

last_option_byte = ArrayMap[u32](max_entries=1)


@xdp(on_error=XDP_PASS)
def last_byte(ctx: XdpContext) -> int:
    if len(ctx.packet) < PAYLOAD_OFFSET + 1 + MAX_OPTION:
        return XDP_PASS
    length = u32(ctx.packet[PAYLOAD_OFFSET])
    if length < 1 or length > MAX_OPTION:
        return XDP_PASS
    last_option_byte[0] = ctx.packet[PAYLOAD_OFFSET + length]
    return XDP_PASS
