// Age a window of 256 one-byte counters in a map value: the packet names a
// start and a length (payload bytes 0 and 1), and the program halves
// counters[start .. start + length), a memset-like loop over a range.
// (Writing zeros instead makes clang emit a memset call, which the BPF
// backend cannot compile at all.)
//
// Safe: `start + length <= 256` is checked first, so every index written is
// inside the counters.
// Rejected: the verifier bounds `start` and `i` separately (0..256 and
// 0..255) and cannot use the check on their sum, so `start + i` may reach
// 511 as far as it knows.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define COUNTERS 256

struct window {
	__u8 counters[COUNTERS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct window);
} windows SEC(".maps");

SEC("xdp")
int age_window(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + 42;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	if (p + 2 > end)
		return XDP_PASS;
	__u32 start = p[0], length = p[1];
	if (start + length > COUNTERS)
		return XDP_PASS;
	struct window *w = bpf_map_lookup_elem(&windows, &zero);
	if (!w)
		return XDP_PASS;
	for (__u32 i = 0; i < length; i++)
		w->counters[start + i] >>= 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
