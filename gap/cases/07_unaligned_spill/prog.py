"""Spread a packet's length over four per-CPU counters, one per 256-byte
band: band b gets min(256, max(0, len - 256 * b)) bytes.

The band index is an ordinary loop variable; no copy for a helper's key.
"""

from pykex import XDP_PASS, PerCpuArray, XdpContext, u32, u64, xdp

BANDS = u32(4)
BAND_BYTES = 256

band_bytes = PerCpuArray[u64](max_entries=BANDS)


@xdp(on_error=XDP_PASS)
def length_bands(ctx: XdpContext) -> int:
    length = u64(len(ctx.packet))
    for band in range(BANDS):
        low = u64(band) * BAND_BYTES
        if length <= low:
            share: u64 = 0
        elif length >= low + BAND_BYTES:
            share = BAND_BYTES
        else:
            share = length - low
        band_bytes[band] += share
    return XDP_PASS
