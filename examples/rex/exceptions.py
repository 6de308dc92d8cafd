"""Exceptions: a program that raises on selected packets (after Rex's exception
handling documentation).

What it does
    The first byte of the packet selects what goes wrong; each failure is a
    Python exception that ends the run with the ``on_error`` verdict
    (``XDP_DROP``), is counted per site and comes back to user space as a
    traceback through the calls that led to it:

    ======  =====================================================
    byte    exception
    ======  =====================================================
    1       ``IndexError``: reading a header past the packet's end
    2       ``ZeroDivisionError``: dividing by the packet's byte 1
    3       ``AssertionError``: byte 1 must be even
    4       ``KeyError``: looking up a port nobody configured
    5       ``ValueError``, raised explicitly with two values
    other   no exception: XDP_PASS
    ======  =====================================================

How to run it
    ext = pykex.load("examples/rex/exceptions.py")
    result = ext.guarded.test_run(bytes([1]) + bytes(15))
    print(result.exception)          # a Python-style traceback
    print(ext.exceptions())          # counts per site
"""

from pykex import XDP_DROP, XDP_PASS, HashMap, XdpContext, u8, u16, u32, xdp
from pykex.net import IPv4

limits = HashMap[u16, u32](max_entries=16)


def header_checksum(ctx: XdpContext) -> u16:
    ip = ctx.packet.read(14, IPv4)
    return ip.check


def ratio(ctx: XdpContext) -> u32:
    return u32(100) // u32(ctx.packet[1])


def check_packet(ctx: XdpContext, kind: u8) -> u32:
    if kind == 1:
        return u32(header_checksum(ctx))
    if kind == 2:
        return ratio(ctx)
    if kind == 3:
        assert ctx.packet[1] % 2 == 0, "byte 1 must be even"
    if kind == 4:
        return limits[u16(ctx.packet[1])]
    if kind == 5:
        raise ValueError("refused packet of length", len(ctx.packet), ctx.packet[1])
    return 0


@xdp(on_error=XDP_DROP)
def guarded(ctx: XdpContext) -> int:
    check_packet(ctx, ctx.packet[0])
    return XDP_PASS
