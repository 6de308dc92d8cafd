"""Regression: a temp spilled late by the register allocator took a stack
slot freed by a temp whose lifetime overlapped its own (two live values in
one slot; the kernel saw a scalar where a pointer was spilled). Found by the
differential fuzzer; minimised (generated code: ruff's style rules do not apply).
"""
# ruff: noqa

from pykex import (
    XDP_PASS,
    XDP_TX,
    ArrayMap,
    HashMap,
    PerCpuArray,
    Struct,
    XdpContext,
    i8,
    i16,
    u8,
    u16,
    u32,
    u64,
    xdp,
)


class Rec(Struct):
    f0: i8


table = HashMap[u64, u16](max_entries=16)
records = ArrayMap[Rec](max_entries=4)
percpu = PerCpuArray[u16](max_entries=4)


def fn0(ctx: XdpContext) -> i8:
    v1: u64 = u64(records[1].f0)
    table[((ctx.packet.read(3, u64) + v1) & 7)] = ((0 & u16(records[0].f0)) << (2 - v1))
    return ctx.packet.read(u32(i8(percpu[4])), i8)


def fn1(ctx: XdpContext, p0: u32) -> u8:
    v3 = fn0(ctx)
    return 0


def fn2(ctx: XdpContext) -> i16:
    v9: u8 = 3
    percpu[u32(fn0(ctx))] = (v9 ^ (3 * v9))
    return i16(table[6])


@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    s12 = Rec(f0=(~records[4].f0))
    if ctx.packet.read(53, i16) > (s12.f0 | i8(fn2(ctx))):
        pass
    elif (percpu[4] > ctx.packet[39] or (s12.f0 >= s12.f0 or (len(ctx.packet) & 7) not in table)):
        if (r13 := table.get(u64(records[2].f0) & 7)) is not None:
            fn1(ctx, r13)
            percpu[4] += r13
    return XDP_TX
