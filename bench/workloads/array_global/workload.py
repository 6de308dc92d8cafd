import struct

from ...packets import tcp_packet
from .. import XDP_DROP, CheckError, MapAccess, Workload, expect

VERDICT_SLOT = struct.pack("<I", 3)  # the config entry the program reads
VERDICT = struct.pack("<I", XDP_DROP)


def set_verdict(maps: MapAccess) -> None:
    maps.update("config", VERDICT_SLOT, VERDICT)


def counted(maps: MapAccess, runs: int) -> None:
    (packets,) = struct.unpack("<Q", maps.variable("packets"))
    expect("the global variable packets", packets, runs)
    if maps.lookup("config", VERDICT_SLOT) != VERDICT:
        raise CheckError("the program changed its config map")


WORKLOAD = Workload(
    name="array_global",
    title="array map lookup + global variable update",
    packet=tcp_packet(payload=bytes(10)),
    retval=XDP_DROP,
    prepare=set_verdict,
    check=counted,
)
