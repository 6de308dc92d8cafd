"""The floor: an XDP program that does nothing but pass the packet."""

from pykex import XDP_PASS, XdpContext, xdp


@xdp
def empty(ctx: XdpContext) -> int:
    return XDP_PASS
