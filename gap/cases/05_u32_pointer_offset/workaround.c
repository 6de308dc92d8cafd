// Workaround: compute the L4 offset from header lengths (plain integers)
// instead of as a pointer difference, so clang has no pointer to narrow.
// Cost: the offset and the pointer are kept twice, in two forms that must
// agree by hand.
//
// Record the destination port of IPv4 TCP/UDP packets (IP options allowed).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} last_port SEC(".maps");

static __attribute__((noinline)) int read_port(struct xdp_md *ctx, __u32 l4_off)
{
	unsigned char *l4 = (void *)(long)ctx->data + l4_off;

	if ((void *)(l4 + 4) > (void *)(long)ctx->data_end)
		return -1;
	return (l4[2] << 8) | l4[3];
}

SEC("xdp")
int dest_port(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	unsigned char *ip = data + 14;

	if ((void *)(ip + 20) > end)
		return XDP_PASS;
	__u32 l4_off = 14 + (ip[0] & 0xf) * 4;
	int port = read_port(ctx, l4_off);
	__u32 zero = 0;

	if (port >= 0)
		bpf_map_update_elem(&last_port, &zero, &port, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
