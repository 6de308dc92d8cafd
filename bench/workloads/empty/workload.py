from ...packets import tcp_packet
from .. import XDP_PASS, Workload

WORKLOAD = Workload(
    name="empty",
    title="empty program (the harness floor)",
    packet=tcp_packet(payload=bytes(10)),
    retval=XDP_PASS,
)
