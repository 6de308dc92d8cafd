"""strstr over an HTTP request: drop the packet if the needle in needle[0]
(up to 16 bytes, its length in `length`) starts within the first 512 bytes
of TCP payload, else pass.

Each candidate position is one slice comparison: no hand-written byte loop,
no bpf_loop callback.
"""

from pykex import XDP_DROP, XDP_PASS, Array, ArrayMap, Struct, XdpContext, u8, u32, xdp

PAYLOAD_OFFSET = u32(54)  # Ethernet 14 + IPv4 20 + TCP 20
WINDOW = 512
MAX_NEEDLE = 16


class Needle(Struct):
    length: u32
    data: Array[u8, MAX_NEEDLE]


needle = ArrayMap[Needle](max_entries=1)


@xdp(on_error=XDP_PASS)
def block_substring(ctx: XdpContext) -> int:
    wanted = needle[0]
    n = wanted.length
    if n == 0 or n > MAX_NEEDLE:
        return XDP_PASS
    for start in range(PAYLOAD_OFFSET, PAYLOAD_OFFSET + WINDOW):
        if start + n > len(ctx.packet):
            break
        if ctx.packet[start : start + n] == wanted.data[:n]:
            return XDP_DROP
    return XDP_PASS
