"""Per-flow rate meter: under the meter's spin lock, start a new one-second
window if the current one is over (the time from ktime_ns()) and add the
packet's length to the window's byte count.
"""

from pykex import XDP_PASS, ArrayMap, SpinLock, Struct, XdpContext, ktime_ns, u64, xdp

WINDOW_NS = 1_000_000_000


class Meter(Struct):
    lock: SpinLock
    window_start: u64
    window_bytes: u64


meters = ArrayMap[Meter](max_entries=1)


@xdp(on_error=XDP_PASS)
def rate_meter(ctx: XdpContext) -> int:
    meter = meters[0]
    with meter.lock:
        now = ktime_ns()
        if now - meter.window_start >= WINDOW_NS:
            meter.window_start = now
            meter.window_bytes = 0
        meter.window_bytes += len(ctx.packet)
    return XDP_PASS
