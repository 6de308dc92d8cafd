"""Take a spin lock around a shared counter update (Rex's lock micro-benchmark)."""

from pykex import XDP_PASS, ArrayMap, SpinLock, Struct, XdpContext, u64, xdp


class Guarded(Struct):
    lock: SpinLock
    value: u64


shared = ArrayMap[Guarded](max_entries=1)


@xdp
def spin_lock(ctx: XdpContext) -> int:
    guarded = shared[0]
    with guarded.lock:
        guarded.value += 1
    return XDP_PASS
