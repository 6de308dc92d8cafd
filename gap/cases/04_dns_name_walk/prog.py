"""DNS blocklist: hash the query name of a DNS request label by label with
32-bit FNV-1a (each label's length byte, then its bytes lower-cased; the
final zero is not hashed) and drop the packet if the hash is a key of
blocked_names. A name cut short by the packet's end passes.

Two nested loops, as the name's structure suggests: no state machine.
"""

from pykex import XDP_DROP, XDP_PASS, HashMap, XdpContext, u8, u32, xdp

NAME_OFFSET = 14 + 20 + 8 + 12  # Ethernet, IPv4, UDP, DNS header
MAX_LABEL_LEN = 63
MAX_NAME_LEN = 255
FNV_OFFSET_BASIS = u32(2166136261)
FNV_PRIME = u32(16777619)
UPPER_A = 0x41  # "A"
UPPER_Z = 0x5A  # "Z"
LOWER_CASE_BIT = 0x20

blocked_names = HashMap[u32, u8](max_entries=1024)


@xdp(on_error=XDP_PASS)
def dns_blocklist(ctx: XdpContext) -> int:
    digest = FNV_OFFSET_BASIS
    pos: u32 = NAME_OFFSET
    while (length := ctx.packet[pos]) != 0:
        if length > MAX_LABEL_LEN or pos + 1 + length - NAME_OFFSET > MAX_NAME_LEN:
            return XDP_PASS
        digest = (digest ^ length) * FNV_PRIME
        for i in range(pos + 1, pos + 1 + length):
            c = ctx.packet[i]
            if UPPER_A <= c <= UPPER_Z:
                c |= LOWER_CASE_BIT
            digest = (digest ^ c) * FNV_PRIME
        pos += 1 + length
    if digest in blocked_names:
        return XDP_DROP
    return XDP_PASS
