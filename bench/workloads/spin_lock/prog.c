// Take a spin lock around a shared counter update (Rex's lock micro-benchmark).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct guarded {
	struct bpf_spin_lock lock;
	__u64 value;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct guarded);
	__uint(max_entries, 1);
} shared SEC(".maps");

SEC("xdp")
int spin_lock(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct guarded *g = bpf_map_lookup_elem(&shared, &zero);
	if (!g)
		return XDP_ABORTED;
	bpf_spin_lock(&g->lock);
	g->value += 1;
	bpf_spin_unlock(&g->lock);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
