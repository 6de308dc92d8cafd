"""Capture the payload of UDP packets: copy length = UDP length - 8 bytes
(when at most 256 and all present) into captures[0] = {length, bytes[256]}.

The copy is one slice assignment, as in Python: no hand-written memcpy.
"""

from pykex import XDP_PASS, Array, ArrayMap, Struct, XdpContext, u8, u32, xdp
from pykex.net import UDP, Ethernet, IPv4

PAYLOAD_OFFSET = Ethernet.size + IPv4.size + UDP.size
MAX_CAPTURE = 256


class Capture(Struct):
    length: u32
    data: Array[u8, MAX_CAPTURE]


captures = ArrayMap[Capture](max_entries=1)


@xdp(on_error=XDP_PASS)
def copy_payload(ctx: XdpContext) -> int:
    udp = ctx.packet.read(Ethernet.size + IPv4.size, UDP)
    length = u32(udp.len) - UDP.size
    if length > MAX_CAPTURE or PAYLOAD_OFFSET + length > len(ctx.packet):
        return XDP_PASS
    capture = captures[0]
    capture.data[:length] = ctx.packet[PAYLOAD_OFFSET : PAYLOAD_OFFSET + length]
    capture.length = length
    return XDP_PASS
