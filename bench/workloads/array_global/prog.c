// Read the verdict from an array map and count packets in a global variable.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 16);
} config SEC(".maps");

__u64 packets = 0;

SEC("xdp")
int array_global(struct xdp_md *ctx)
{
	__u32 key = 3;
	__u32 *verdict = bpf_map_lookup_elem(&config, &key);
	if (!verdict)
		return XDP_ABORTED;
	__sync_fetch_and_add(&packets, 1);
	return *verdict;
}

char LICENSE[] SEC("license") = "GPL";
