"""Indexed read from a configured table: tables[0] holds a count (at most
32) and 32 entries; payload byte 0 selects an entry, which is stored in
selected[0] only if it is below the count.
"""

from pykex import XDP_PASS, Array, ArrayMap, Struct, XdpContext, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
ENTRIES = 32


class Table(Struct):
    count: u32
    entries: Array[u32, ENTRIES]


tables = ArrayMap[Table](max_entries=1)
selected = ArrayMap[u32](max_entries=1)


@xdp(on_error=XDP_PASS)
def table_select(ctx: XdpContext) -> int:
    index = ctx.packet[PAYLOAD_OFFSET]
    table = tables[0]
    if table.count > ENTRIES or index >= table.count:
        return XDP_PASS
    selected[0] = table.entries[index]
    return XDP_PASS
