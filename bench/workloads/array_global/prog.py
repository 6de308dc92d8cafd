"""Read the verdict from an array map and count packets in a global variable."""

from pykex import ArrayMap, Struct, XdpContext, atomic_add, u32, u64, xdp

VERDICT_SLOT = 3  # the config entry that holds the verdict

config = ArrayMap[u32](max_entries=16)


class Count(Struct):
    count: u64


packets: Count = Count()  # shared state lives in a Struct global


@xdp
def array_global(ctx: XdpContext) -> int:
    verdict = config[VERDICT_SLOT]
    atomic_add(packets.count, 1)  # every CPU counts into the one global
    return verdict
