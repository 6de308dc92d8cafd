"""Age a window of 256 one-byte counters: payload byte 0 is start, byte 1
is length; if start + length <= 256, halve counters[start .. start+length)
of windows[0].
"""

from pykex import XDP_PASS, Array, ArrayMap, Struct, XdpContext, u8, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
COUNTERS = 256


class Window(Struct):
    counters: Array[u8, COUNTERS]


windows = ArrayMap[Window](max_entries=1)


@xdp(on_error=XDP_PASS)
def age_window(ctx: XdpContext) -> int:
    start = u32(ctx.packet[PAYLOAD_OFFSET])
    length = u32(ctx.packet[PAYLOAD_OFFSET + 1])
    if start + length > COUNTERS:
        return XDP_PASS
    window = windows[0]
    for i in range(start, start + length):
        window.counters[i] >>= 1
    return XDP_PASS
