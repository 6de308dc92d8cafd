"""Count packets per receive queue or per ingress interface, whichever the
operator selected in config[0] (1 = by queue), in 256 counters indexed by
the low byte of the chosen field.

The choice is an ordinary conditional expression; no barrier, no double load.
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, atomic_add, u32, u64, xdp

BY_QUEUE = 1

config = ArrayMap[u32](max_entries=1)
counters = ArrayMap[u64](max_entries=256)


@xdp(on_error=XDP_PASS)
def rx_counter(ctx: XdpContext) -> int:
    field = ctx.rx_queue_index if config[0] == BY_QUEUE else ctx.ingress_ifindex
    atomic_add(counters[field & 0xFF], 1)
    return XDP_PASS
