"""Label lookup: payload byte 0 is an index, byte 1 a length (at most 32),
then 32 label bytes. Copy the first `length` label bytes lower-cased into a
local buffer and, if index < length, store buffer[index] in picked_byte[0].
"""

from pykex import XDP_PASS, Array, ArrayMap, Struct, XdpContext, u8, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
MAX_LABEL = 32
LOWER_CASE_BIT = 0x20


class Label(Struct):
    data: Array[u8, MAX_LABEL]


picked_byte = ArrayMap[u32](max_entries=1)


@xdp(on_error=XDP_PASS)
def pick_label_byte(ctx: XdpContext) -> int:
    if len(ctx.packet) < PAYLOAD_OFFSET + 2 + MAX_LABEL:
        return XDP_PASS
    index = ctx.packet[PAYLOAD_OFFSET]
    length = ctx.packet[PAYLOAD_OFFSET + 1]
    if length > MAX_LABEL or index >= length:
        return XDP_PASS
    label = Label()
    for i in range(length):
        label.data[i] = ctx.packet[PAYLOAD_OFFSET + 2 + i] | LOWER_CASE_BIT
    picked_byte[0] = label.data[index]
    return XDP_PASS
