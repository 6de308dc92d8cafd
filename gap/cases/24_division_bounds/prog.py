"""Three-byte records: payload byte 0 is a byte count n; the number of whole
records n // 3 selects a weight from an 86-entry table (1 for fewer than 16
records, else 2), added to record_weight[0].

The table index is `n // 3`, used as is: no barrier, no dead check.
"""

from pykex import XDP_PASS, Array, ArrayMap, Struct, XdpContext, atomic_add, u8, u64, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
MAX_RECORDS = 85
SMALL_BATCH = 16


class WeightTable(Struct):
    by_count: Array[u8, MAX_RECORDS + 1]


record_weight = ArrayMap[u64](max_entries=1)


@xdp(on_error=XDP_PASS)
def record_count(ctx: XdpContext) -> int:
    weights = WeightTable()
    for count in range(MAX_RECORDS + 1):
        weights.by_count[count] = 1 if count < SMALL_BATCH else 2  # big batches count twice
    records = ctx.packet[PAYLOAD_OFFSET] // 3
    atomic_add(record_weight[0], weights.by_count[records])
    return XDP_PASS
