"""Delimiter statistics for HTTP requests: count sixteen URL and header
delimiters (& = / ? % + ; # space , : @ ! $ * ~, slots 0..15 in that order)
in the first 1,500 bytes of TCP payload and add the counts to
delimiter_counts.

A loop over the payload and one over the delimiters: no lookup table to
build by hand, no masked stack index.
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, u32, u64, xdp

PAYLOAD_OFFSET = 54  # Ethernet 14 + IPv4 20 + TCP 20
SCAN_BYTES = 1500
DELIMITERS = b"&=/?%+;# ,:@!$*~"

delimiter_counts = ArrayMap[u64](max_entries=len(DELIMITERS))


@xdp(on_error=XDP_PASS)
def delimiter_stats(ctx: XdpContext) -> int:
    end = len(ctx.packet)
    if end > PAYLOAD_OFFSET + SCAN_BYTES:
        end = PAYLOAD_OFFSET + SCAN_BYTES
    for i in range(PAYLOAD_OFFSET, end):
        byte = ctx.packet[i]
        for kind in range(len(DELIMITERS)):
            if byte == DELIMITERS[kind]:
                delimiter_counts[u32(kind)] += 1
                break
    return XDP_PASS
