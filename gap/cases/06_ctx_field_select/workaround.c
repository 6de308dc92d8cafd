// Workaround: load both fields unconditionally, then pick a value; the empty
// asm statement stops clang from folding the two loads back into one load
// through a computed context address (Cilium's bpf_barrier()). Cost: an
// extra load on every packet and a compiler barrier only the verifier needs.
//
// Count packets per receive queue or per ingress interface, whichever the
// operator selected in slot 0 of `config` (1 = by queue). 256 counters,
// indexed by the low byte of the chosen field.
//
// Safe: both context fields may be read by XDP programs, and the counter
// index is masked to 0..255.
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
	__u32 queue = ctx->rx_queue_index;
	__u32 ifindex = ctx->ingress_ifindex;
	asm volatile("" ::: "memory");
	__u32 key = (*by_queue == 1 ? queue : ifindex) & 0xff;
	__u64 *slot = bpf_map_lookup_elem(&counters, &key);

	if (slot)
		__sync_fetch_and_add(slot, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
