"""Regression: host mode updated a hash map entry in place, but the kernel
links a new element in place of the old one, so a reference taken before
the update still reads the old value there (7, not 5). The interpreter now
does the same for hash and LRU hash maps (per-CPU ones do update in place).
"""

from pykex import HashMap, LruHashMap, PerCpuHashMap, XdpContext, u32, u64, xdp

table = HashMap[u32, u64](max_entries=16)
recent = LruHashMap[u32, u64](max_entries=16)
mine = PerCpuHashMap[u32, u64](max_entries=16)


@xdp(on_error=0)
def prog(ctx: XdpContext) -> int:
    table[1] = 7
    recent[1] = 70
    mine[1] = 700
    total: u64 = 0
    if (r := table.get(1)) is not None:
        table[1] = 5
        total += r
    if (s := recent.get(1)) is not None:
        recent[1] = 50
        total += s
    if (t := mine.get(1)) is not None:
        mine[1] = 500
        total += t
    return u32(total)
