"""Consistent hashing onto 10 backends: hash the IPv4 source address
(s * 2654435761, 32 bits), pick backend (hash >> 16) % 10 and store
(backend << 8) | WEIGHTS[backend] in chosen_backend[0].

The index is `% BACKENDS`, used as is: no mask, no barrier.
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, u32, xdp
from pykex.net import Ethernet, IPv4

BACKENDS = 10
GOLDEN_RATIO_32 = u32(2654435761)
WEIGHTS = (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)

chosen_backend = ArrayMap[u32](max_entries=1)


@xdp(on_error=XDP_PASS)
def pick_backend(ctx: XdpContext) -> int:
    ip = ctx.packet.read(Ethernet.size, IPv4)
    digest = u32(ip.saddr) * GOLDEN_RATIO_32
    backend = (digest >> 16) % BACKENDS
    chosen_backend[0] = backend << 8 | WEIGHTS[backend]
    return XDP_PASS
