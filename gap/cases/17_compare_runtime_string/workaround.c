// Workaround: hand-write strncmp as a bounded loop over the two
// buffers. Cost: the library routine is re-implemented (and re-verified) in
// every program that needs it.
//
// Host filter: compare the DNS query's first label (up to 32 bytes, copied
// from the packet) with the hostname an operator stored in `blocked_host`,
// using the kernel's bpf_strncmp helper, and drop on a match.
//
// Safe: the label is copied into a zero-initialized 32-byte stack buffer,
// and the map value is a 32-byte buffer the helper reads at most 32 bytes of.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define LABEL_OFFSET (14 + 20 + 8 + 12) /* Ethernet, IPv4, UDP, DNS header */
#define MAX_LABEL 32

struct hostname {
	char name[MAX_LABEL];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hostname);
} blocked_host SEC(".maps");

SEC("xdp")
int host_filter(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + LABEL_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	char label[MAX_LABEL] = {};
	__u32 zero = 0;

	if (p + 1 > end)
		return XDP_PASS;
	__u8 len = p[0];
	for (int i = 0; i < MAX_LABEL - 1; i++) {
		if (i >= len || p + 2 + i > end)
			break;
		label[i] = p[1 + i];
	}
	struct hostname *blocked = bpf_map_lookup_elem(&blocked_host, &zero);
	if (!blocked)
		return XDP_PASS;
	for (int i = 0; i < MAX_LABEL; i++) {
		if (label[i] != blocked->name[i])
			return XDP_PASS;
		if (label[i] == 0)
			break;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
