"""Snippet capture: payload byte 0 is a length (at most 32); copy the
`length` payload bytes after it into snippets[0] = {length, bytes[32]}.
A length of zero stores an empty snippet.

The copy is one slice assignment; zero bytes is not a special case.
"""

from pykex import XDP_PASS, Array, ArrayMap, Struct, XdpContext, u8, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
SNIPPET_OFFSET = PAYLOAD_OFFSET + 1
MAX_SNIPPET = 32


class Snippet(Struct):
    length: u32
    data: Array[u8, MAX_SNIPPET]


snippets = ArrayMap[Snippet](max_entries=1)


@xdp(on_error=XDP_PASS)
def snippet(ctx: XdpContext) -> int:
    length = u32(ctx.packet[PAYLOAD_OFFSET])
    if length > MAX_SNIPPET:
        return XDP_PASS
    copied = Snippet(length=length)
    copied.data[:length] = ctx.packet[SNIPPET_OFFSET : SNIPPET_OFFSET + length]
    snippets[0] = copied
    return XDP_PASS
