"""Nested TLV walk as a recursive-descent parser: from payload offset 42, a
byte 0xfe opens a nested record (two bytes per level) and the first other
byte is the innermost tag, found at most nine levels deep; innermost_tags[tag]
is incremented.

Each level is the same function called one level deeper.
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, atomic_add, u8, u32, u64, xdp

TLV_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
NESTED = 0xFE
MAX_DEPTH = 9

innermost_tags = ArrayMap[u64](max_entries=256)


def innermost_tag(ctx: XdpContext, offset: u32, depth: u32) -> u8:
    tag = ctx.packet[offset]
    if tag != NESTED or depth == MAX_DEPTH:
        return tag
    return innermost_tag(ctx, offset + 2, depth + 1)


@xdp(on_error=XDP_PASS)
def nested_tlv(ctx: XdpContext) -> int:
    tag = innermost_tag(ctx, TLV_OFFSET, 1)
    atomic_add(innermost_tags[tag], 1)
    return XDP_PASS
