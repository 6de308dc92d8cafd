from ...packets import tcp_packet
from .. import XDP_PASS, Case, CheckError, MapAccess, Workload, expect

RECORD_SIZE = 64
# The ring holds 128 MiB; each record takes its size plus an 8-byte header.
RING_BYTES = 128 << 20
RECORDS_THAT_FIT = RING_BYTES // (RECORD_SIZE + 8)

PACKET = tcp_packet(payload=bytes(range(40)))


def sent(maps: MapAccess, runs: int) -> None:
    records = maps.records("events")
    expect("records in the ring buffer", len(records), runs)
    wrong = [r for r in records if r != PACKET[:RECORD_SIZE]]
    if wrong:
        raise CheckError(f"{len(wrong)} records differ from the packet's first 64 bytes")


def make_room(maps: MapAccess) -> None:
    maps.records("events")


WORKLOAD = Workload(
    name="ringbuf_output",
    title="ring buffer output of a 64-byte record",
    packet=PACKET,
    retval=XDP_PASS,
    check=sent,
    cases=(Case("a packet shorter than a record", tcp_packet(), XDP_PASS),),
    runs_per_call=RECORDS_THAT_FIT,
    between_calls=make_room,
)
