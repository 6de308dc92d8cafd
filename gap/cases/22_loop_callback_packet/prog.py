"""XOR-fold the first 256 bytes of UDP payload (fewer if the packet ends
first) into one byte, stored in payload_fold[0].

A plain loop: no bpf_loop callback, no context struct of pointers.
"""

from pykex import XDP_PASS, ArrayMap, XdpContext, u8, u32, xdp

PAYLOAD_OFFSET = 42  # Ethernet 14 + IPv4 20 + UDP 8
FOLD_BYTES = 256

payload_fold = ArrayMap[u32](max_entries=1)


@xdp(on_error=XDP_PASS)
def fold_payload(ctx: XdpContext) -> int:
    end = len(ctx.packet)
    if end > PAYLOAD_OFFSET + FOLD_BYTES:
        end = PAYLOAD_OFFSET + FOLD_BYTES
    fold: u8 = 0
    for i in range(PAYLOAD_OFFSET, end):
        fold ^= ctx.packet[i]
    payload_fold[0] = fold
    return XDP_PASS
