"""Regression: a packet read at a constant offset past the verifier's 64 KiB
bound always fails, and the backend jumped to the IndexError without
dropping the code after it; the verifier refused the unreachable
instructions. Now legalized at every optimisation level.
"""

from pykex import XdpContext, u8, xdp


@xdp(on_error=0)
def prog(ctx: XdpContext) -> int:
    y: u8 = ctx.packet[70000]
    return y
