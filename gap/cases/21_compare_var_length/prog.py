"""Port-knocking gate: pass packets whose UDP payload starts with the
operator's token (token[0]: up to 32 bytes, its length in `length`); drop
all others, including payloads shorter than the token.

The test is one slice comparison: no hand-written memcmp.
"""

from pykex import XDP_DROP, XDP_PASS, Array, ArrayMap, Struct, XdpContext, u8, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
MAX_TOKEN = 32


class Token(Struct):
    length: u32
    data: Array[u8, MAX_TOKEN]


token = ArrayMap[Token](max_entries=1)


@xdp(on_error=XDP_PASS)
def token_gate(ctx: XdpContext) -> int:
    expected = token[0]
    n = expected.length
    if n > MAX_TOKEN or PAYLOAD_OFFSET + n > len(ctx.packet):
        return XDP_DROP
    if ctx.packet[PAYLOAD_OFFSET : PAYLOAD_OFFSET + n] == expected.data[:n]:
        return XDP_PASS
    return XDP_DROP
