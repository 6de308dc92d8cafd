"""Send the first 64 bytes of each packet to user space through a ring buffer."""

from pykex import XDP_PASS, Array, RingBuffer, Struct, XdpContext, u8, xdp

RECORD_SIZE = 64


class Record(Struct):
    head: Array[u8, RECORD_SIZE]


events = RingBuffer(size=128 << 20)


@xdp
def ringbuf_output(ctx: XdpContext) -> int:
    if len(ctx.packet) < RECORD_SIZE:
        return XDP_PASS
    with events.reserve(Record) as record:
        record.head = ctx.packet[0:RECORD_SIZE]
    return XDP_PASS
