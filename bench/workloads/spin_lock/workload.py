import struct

from ...packets import tcp_packet
from .. import XDP_PASS, MapAccess, Workload, expect

# struct guarded: a 4-byte struct bpf_spin_lock, padding, then the u64 value.
VALUE_OFFSET, GUARDED_SIZE = 8, 16


def counted(maps: MapAccess, runs: int) -> None:
    raw = maps.lookup("shared", struct.pack("<I", 0)) or b""
    expect("the size of the locked value", len(raw), GUARDED_SIZE)
    (value,) = struct.unpack_from("<Q", raw, VALUE_OFFSET)
    expect("the value updated under the lock", value, runs)


WORKLOAD = Workload(
    name="spin_lock",
    title="spin lock acquire/release around a map value update",
    packet=tcp_packet(payload=bytes(10)),
    retval=XDP_PASS,
    check=counted,
)
