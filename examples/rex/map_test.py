"""Map test: every keyed map kind, from one XDP program (a port of Rex's ``map_test``).

What it does
    Each packet's first byte picks an operation, applied to every kind of map:
    hash, LRU hash, per-CPU hash, array, per-CPU array and LPM trie. User
    space reads and writes the same maps through typed views.

    =====  ===========================================================
    byte   operation
    =====  ===========================================================
    0      insert ``key -> value`` (bytes 1 and 2) everywhere
    1      ``setdefault`` then add the value (per-CPU maps count per CPU)
    2      delete ``key`` from the hash maps (``KeyError`` when absent)
    3      look ``key`` up with ``get``: XDP_PASS if present, XDP_DROP if not
    4      longest-prefix match of 10.0.0.<key>: the route's value, or 0
    =====  ===========================================================

How to run it
    pykex check examples/rex/map_test.py; tests/rex/test_samples.py drives it.
"""

from pykex import (
    XDP_DROP,
    XDP_PASS,
    Array,
    ArrayMap,
    HashMap,
    LpmTrie,
    LruHashMap,
    PerCpuArray,
    PerCpuHashMap,
    Struct,
    XdpContext,
    u8,
    u32,
    u64,
    xdp,
)


class Prefix(Struct):
    prefixlen: u32
    address: Array[u8, 4]


hashed = HashMap[u32, u64](max_entries=64)
recent = LruHashMap[u32, u64](max_entries=4)
per_cpu = PerCpuHashMap[u32, u64](max_entries=64)
table = ArrayMap[u64](max_entries=16)
per_cpu_table = PerCpuArray[u64](max_entries=16)
routes = LpmTrie[Prefix, u32](max_entries=64)


@xdp(on_error=XDP_DROP)
def maps(ctx: XdpContext) -> int:
    operation = ctx.packet[0]
    key = u32(ctx.packet[1])
    value = u64(ctx.packet[2])
    if operation == 0:
        hashed[key] = value
        recent[key] = value
        per_cpu[key] = value
        table[key] = value
        per_cpu_table[key] = value
    elif operation == 1:
        total = hashed.setdefault(key, 0)
        hashed[key] = total + value
        mine = per_cpu.setdefault(key, 0)
        per_cpu[key] = mine + value
        table[key] += value
        per_cpu_table[key] += value
    elif operation == 2:
        del hashed[key]
        del per_cpu[key]
        if key in recent:
            del recent[key]
    elif operation == 3:
        if (found := hashed.get(key)) is not None:
            return XDP_PASS if found == value else XDP_DROP
        return XDP_DROP
    elif operation == 4:
        probe = Prefix(prefixlen=32)
        probe.address[0] = 10
        probe.address[3] = u8(key)
        if (hop := routes.get(probe)) is not None:
            return hop
        return 0
    return XDP_PASS
