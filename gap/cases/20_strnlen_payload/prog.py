"""strnlen on a packet: the length of the NUL-terminated string that starts
the UDP payload, at most 128 and at most the bytes present, stored in
name_length[0].
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
MAX_NAME = 128

name_length = ArrayMap[u32](max_entries=1)


@xdp(on_error=XDP_PASS)
def payload_strnlen(ctx: XdpContext) -> int:
    length: u32 = 0
    while (
        length < MAX_NAME
        and PAYLOAD_OFFSET + length < len(ctx.packet)
        and ctx.packet[PAYLOAD_OFFSET + length] != 0
    ):
        length += 1
    name_length[0] = length
    return XDP_PASS
