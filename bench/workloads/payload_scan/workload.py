from ...packets import filler, tcp_packet, tcp_packet_of_size
from .. import XDP_DROP, XDP_PASS, Case, Workload

SIGNATURE = b"EVIL"

WORKLOAD = Workload(
    name="payload_scan",
    title="byte-by-byte scan of a 1,500-byte packet for a 4-byte signature",
    # The signature ends the payload, so the whole payload is scanned.
    packet=tcp_packet_of_size(1500, SIGNATURE),
    retval=XDP_DROP,
    cases=(
        Case("no signature", tcp_packet_of_size(1500), XDP_PASS),
        Case("the signature mid-payload", tcp_packet(payload=filler(100) + SIGNATURE + filler(9)),
             XDP_DROP),
        Case("a signature cut by the packet's end", tcp_packet(payload=filler(20) + b"EVI"),
             XDP_PASS),
    ),
)
