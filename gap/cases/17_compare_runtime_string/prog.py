"""Host filter: copy the DNS query's first label (up to 31 bytes) into a
zeroed 32-byte buffer and drop the packet if it equals the NUL-padded name
an operator stored in blocked_host[0].

The comparison is ==, against a value user space may change at any time.
"""

from pykex import XDP_DROP, XDP_PASS, ArrayMap, Bytes, Struct, XdpContext, u32, xdp

LABEL_OFFSET = 14 + 20 + 8 + 12  # Ethernet, IPv4, UDP, DNS header
MAX_LABEL = 32


class Hostname(Struct):
    name: Bytes[MAX_LABEL]


blocked_host = ArrayMap[Hostname](max_entries=1)


@xdp(on_error=XDP_PASS)
def host_filter(ctx: XdpContext) -> int:
    length = u32(ctx.packet[LABEL_OFFSET])
    if length > MAX_LABEL - 1:
        length = MAX_LABEL - 1
    label = Hostname()
    label.name[:length] = ctx.packet[LABEL_OFFSET + 1 : LABEL_OFFSET + 1 + length]
    if label.name == blocked_host[0].name:
        return XDP_DROP
    return XDP_PASS
