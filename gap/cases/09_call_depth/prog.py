"""Nested TLV walk as a recursive-descent parser: from payload offset 42, a
byte 0xfe opens a nested record (two bytes per level) and the first other
byte is the innermost tag, found at most nine levels deep; innermost_tags[tag]
is incremented.

Each level is its own function, as in the C program: nine nested calls, which
pykex inlines, so no call frame limit applies.
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, atomic_add, u8, u32, u64, xdp

TLV_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
NESTED = 0xFE

innermost_tags = ArrayMap[u64](max_entries=256)


def level9(ctx: XdpContext, offset: u32) -> u8:
    return ctx.packet[offset]


def level8(ctx: XdpContext, offset: u32) -> u8:
    tag = ctx.packet[offset]
    if tag != NESTED:
        return tag
    return level9(ctx, offset + 2)


def level7(ctx: XdpContext, offset: u32) -> u8:
    tag = ctx.packet[offset]
    if tag != NESTED:
        return tag
    return level8(ctx, offset + 2)


def level6(ctx: XdpContext, offset: u32) -> u8:
    tag = ctx.packet[offset]
    if tag != NESTED:
        return tag
    return level7(ctx, offset + 2)


def level5(ctx: XdpContext, offset: u32) -> u8:
    tag = ctx.packet[offset]
    if tag != NESTED:
        return tag
    return level6(ctx, offset + 2)


def level4(ctx: XdpContext, offset: u32) -> u8:
    tag = ctx.packet[offset]
    if tag != NESTED:
        return tag
    return level5(ctx, offset + 2)


def level3(ctx: XdpContext, offset: u32) -> u8:
    tag = ctx.packet[offset]
    if tag != NESTED:
        return tag
    return level4(ctx, offset + 2)


def level2(ctx: XdpContext, offset: u32) -> u8:
    tag = ctx.packet[offset]
    if tag != NESTED:
        return tag
    return level3(ctx, offset + 2)


def level1(ctx: XdpContext, offset: u32) -> u8:
    tag = ctx.packet[offset]
    if tag != NESTED:
        return tag
    return level2(ctx, offset + 2)


@xdp(on_error=XDP_PASS)
def nested_tlv(ctx: XdpContext) -> int:
    tag = level1(ctx, TLV_OFFSET)
    atomic_add(innermost_tags[tag], 1)
    return XDP_PASS
