"""Regression: store forwarding turned ``v`` into the constant -128, so the
packet read became a constant check that always fails; the code after it
was left unreachable (the verifier refused it), and once that was cut,
a later block still used a value the cut code defined. Found by the
differential fuzzer; minimised.
"""

from pykex import XdpContext, i8, u8, u16, xdp


@xdp(on_error=3)
def prog(ctx: XdpContext) -> int:
    v: i8 = -128
    w: u8 = ctx.packet[v]
    x: u16 = w if v != v else w  # noqa: RUF034 -- the shape the fuzzer found
    return x
