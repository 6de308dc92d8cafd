// Record the destination port of IPv4 TCP/UDP packets (IP options allowed).
// The L4 offset is computed as a pointer difference and handed to a helper
// function that re-derives the header pointer, as parsers that pass offsets
// between stages do.
//
// Safe: the IPv4 header is read after a bounds check, the L4 offset is at
// most 14 + 60, and read_port checks its four bytes against data_end.
// Rejected because clang only needs the low 32 bits of `l4 - data` and
// computes `ip + ihl` with a 32-bit add on the packet pointer.
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
	unsigned char *l4 = ip + (ip[0] & 0xf) * 4;
	__u32 l4_off = (void *)l4 - data;
	int port = read_port(ctx, l4_off);
	__u32 zero = 0;

	if (port >= 0)
		bpf_map_update_elem(&last_port, &zero, &port, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
