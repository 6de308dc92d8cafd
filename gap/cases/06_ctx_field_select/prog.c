// Count packets per receive queue or per ingress interface, whichever the
// operator selected in slot 0 of `config` (1 = by queue). 256 counters,
// indexed by the low byte of the chosen field.
//
// Safe: both context fields may be read by XDP programs, and the counter
// index is masked to 0..255.
// Rejected because clang turns the choice between two field addresses into
// `ctx + (12 or 16)` followed by one load, and the verifier only accepts
// context loads at a constant offset from the unmodified context pointer.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

SEC("xdp")
int rx_counter(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u32 *by_queue = bpf_map_lookup_elem(&config, &zero);

	if (!by_queue)
		return XDP_PASS;
	__u32 *field = *by_queue == 1 ? &ctx->rx_queue_index : &ctx->ingress_ifindex;
	__u32 key = *field & 0xff;
	__u64 *slot = bpf_map_lookup_elem(&counters, &key);

	if (slot)
		__sync_fetch_and_add(slot, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
