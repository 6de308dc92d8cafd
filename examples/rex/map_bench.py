"""Map benchmark: the cost of map operations per packet (a port of Rex's ``map_bench``).

What it does
    Each run does ``ROUNDS`` lookups and updates in a hash map and in an
    array map, keyed by the loop counter. BPF_PROG_TEST_RUN's per-run duration
    divided by ``ROUNDS`` is the cost of one lookup-and-update pair; compare it
    with the empty program's 21 ns floor (docs in DESIGN.md, "Measuring").

How to run it
    ext = pykex.load("examples/rex/map_bench.py")
    result = ext.bench_hash.test_run(bytes(64), repeat=1000)
    print(result.duration_ns / ROUNDS, "ns per hash lookup and update")
"""

from pykex import XDP_PASS, ArrayMap, HashMap, XdpContext, u32, u64, xdp

ROUNDS = 64

hashed = HashMap[u32, u64](max_entries=ROUNDS)
table = ArrayMap[u64](max_entries=ROUNDS)


@xdp()
def bench_hash(ctx: XdpContext) -> int:
    for i in range(ROUNDS):
        key = u32(i)
        seen = hashed.setdefault(key, 0)
        hashed[key] = seen + 1
    return XDP_PASS


@xdp()
def bench_array(ctx: XdpContext) -> int:
    for i in range(ROUNDS):
        table[u32(i)] += 1
    return XDP_PASS
