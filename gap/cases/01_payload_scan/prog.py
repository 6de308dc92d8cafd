"""Longest-line detector: the length of the longest '\\n'-terminated run of
bytes in the first 1,500 bytes of a UDP payload, stored in longest_line[0].

The plain loop over the payload: no split, no scratch map.
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
MAX_PAYLOAD = 1500
NEWLINE = 0x0A

longest_line = ArrayMap[u32](max_entries=1)


@xdp(on_error=XDP_PASS)
def payload_scan(ctx: XdpContext) -> int:
    end = len(ctx.packet)
    if end > PAYLOAD_OFFSET + MAX_PAYLOAD:
        end = PAYLOAD_OFFSET + MAX_PAYLOAD
    current: u32 = 0
    longest: u32 = 0
    for i in range(PAYLOAD_OFFSET, end):
        if ctx.packet[i] == NEWLINE:
            current = 0
            continue
        current += 1
        if current > longest:
            longest = current
    longest_line[0] = longest
    return XDP_PASS
