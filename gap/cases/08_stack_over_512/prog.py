"""Sample the first 320 packet bytes, then let a helper function build a
report (the bytes copied, at most 320, and the first 224 sampled bytes,
zero-padded) and store it in reports[0].

Both buffers are ordinary locals (560 bytes of them); no scratch map.
"""

from pykex import XDP_PASS, Array, ArrayMap, Struct, XdpContext, u8, u64, xdp

SAMPLE = 320
HEAD = 224


class Sample(Struct):
    length: u64
    data: Array[u8, SAMPLE]


class Report(Struct):
    length: u64
    head: Array[u8, HEAD]


reports = ArrayMap[Report](max_entries=1)


def publish(sample: Sample) -> None:
    report = Report(length=sample.length)
    for i in range(HEAD):
        report.head[i] = sample.data[i]
    reports[0] = report


@xdp(on_error=XDP_PASS)
def sample_head(ctx: XdpContext) -> int:
    sample = Sample()
    count = len(ctx.packet)
    if count > SAMPLE:
        count = SAMPLE
    for i in range(count):
        sample.data[i] = ctx.packet[i]
    sample.length = count
    publish(sample)
    return XDP_PASS
