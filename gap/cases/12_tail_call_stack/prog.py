"""Dispatcher: copy the first 288 packet bytes into a sample (36 little-endian
u64 words, zero-padded), hash it FNV-style in a classifier function and
jump to stage (hash >> 32) & 3 of the program array next_stage; with no
stage installed there, fall through to XDP_PASS.

The sample stays a local of the entry; the jump is made from the function.
"""

from pykex import XDP_PASS, Array, ProgramArray, Struct, XdpContext, tail_call, u32, u64, xdp

SAMPLE_BYTES = 288
FNV_PRIME_64 = u64(0x100000001B3)

next_stage = ProgramArray(max_entries=4)


class Sample(Struct):
    words: Array[u64, SAMPLE_BYTES // 8]


def classify_and_jump(ctx: XdpContext, sample: Sample) -> u32:
    mix: u64 = 0
    for i in range(SAMPLE_BYTES // 8):
        mix = (mix ^ sample.words[i]) * FNV_PRIME_64
    tail_call(ctx, next_stage, u32(mix >> 32) & 3)  # returns only when the slot is empty
    return XDP_PASS


@xdp(on_error=XDP_PASS)
def dispatcher(ctx: XdpContext) -> int:
    sample = Sample()
    count = len(ctx.packet)
    if count > SAMPLE_BYTES:
        count = SAMPLE_BYTES
    for i in range(count):
        sample.words[i // 8] |= u64(ctx.packet[i]) << (i % 8 * 8)
    return classify_and_jump(ctx, sample)
