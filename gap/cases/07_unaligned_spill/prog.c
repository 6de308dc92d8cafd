// Spread a packet's length over four per-CPU counters, one per 256-byte
// band, by adding to each band's counter the bytes that fall into it.
// The band index lives in a local variable whose address is passed to
// bpf_map_lookup_elem, so clang keeps it on the stack.
//
// Safe: the band index runs from 0 to 3 and indexes a four-element array.
// Rejected because the 4-byte counter sits in a stack slot that is not
// 8-byte aligned; the verifier only tracks values spilled to aligned slots,
// so the reloaded counter is an unknown 32-bit number (an unbounded array
// index, and a loop the verifier cannot see end).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BANDS 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BANDS);
	__type(key, __u32);
	__type(value, __u64);
} band_bytes SEC(".maps");

SEC("xdp")
int length_bands(struct xdp_md *ctx)
{
	__u64 len = ctx->data_end - ctx->data;
	__u64 share[BANDS];

	for (int b = 0; b < BANDS; b++) {
		__u64 lo = b * 256, hi = lo + 256;
		share[b] = len <= lo ? 0 : (len >= hi ? 256 : len - lo);
	}
	for (__u32 band = 0; band < BANDS; band++) {
		__u64 *slot = bpf_map_lookup_elem(&band_bytes, &band);
		if (slot)
			*slot += share[band];
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
