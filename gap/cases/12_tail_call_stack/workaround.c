// Workaround: keep the sample in a per-CPU scratch map instead of on the
// entry's stack. Cost: a second map and a lookup (with its failure path).
//
// Dispatcher: the entry function copies the first 288 packet bytes into a
// local sample, and a classifier function (a BPF-to-BPF call) hashes the
// sample and tail-calls one of four next stages from `next_stage`.
//
// Safe: each packet byte is read after a bounds check; the sample is indexed
// by constant-bounded loop counters; a missing stage falls through to
// XDP_PASS.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SAMPLE 288

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} next_stage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64[SAMPLE / 8]);
} scratch SEC(".maps");

static __attribute__((noinline)) int classify_and_jump(struct xdp_md *ctx, const __u64 *sample)
{
	__u64 mix = 0;

	for (int i = 0; i < SAMPLE / 8; i++)
		mix = (mix ^ sample[i]) * 0x100000001b3ull;
	bpf_tail_call(ctx, &next_stage, (mix >> 32) & 3);
	return XDP_PASS;
}

SEC("xdp")
int dispatcher(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	__u64 *sample = bpf_map_lookup_elem(&scratch, &zero);

	if (!sample)
		return XDP_PASS;
	__builtin_memset(sample, 0, SAMPLE);
	for (int i = 0; i < SAMPLE; i++) {
		if (p + i + 1 > end)
			break;
		((__u8 *)sample)[i] = p[i];
	}
	return classify_and_jump(ctx, sample);
}

char LICENSE[] SEC("license") = "GPL";
