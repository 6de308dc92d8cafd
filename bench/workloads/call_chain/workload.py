from ...packets import tcp_packet
from .. import Case, Workload

STEPS = 8


def chained(packet_length: int) -> int:
    """What the eight calls compute: x = x * 3 + step, for step 1..8, in 32 bits."""
    x = packet_length
    for step in range(1, STEPS + 1):
        x = (x * 3 + step) & 0xFFFFFFFF
    return x


PACKET = tcp_packet(payload=bytes(10))
OTHER = tcp_packet(payload=bytes(1000))

WORKLOAD = Workload(
    name="call_chain",
    title="eight BPF-to-BPF calls in a row (__noinline)",
    packet=PACKET,
    retval=chained(len(PACKET)),
    cases=(Case("a longer packet", OTHER, chained(len(OTHER))),),
)
