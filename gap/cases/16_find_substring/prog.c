// strstr over an HTTP request: drop the packet if the first 512 payload
// bytes contain the needle stored in `needle` (up to 16 bytes, its length in
// `len`), e.g. a path an operator wants to block.
//
// Safe: every payload byte is read after a bounds check, the needle index is
// below 16, and both loops have constant bounds.
// Rejected: the nested loops (512 start positions x 16 needle bytes) with
// early exits make more paths than the verifier will walk.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define WINDOW 512
#define MAX_NEEDLE 16
#define PAYLOAD_OFFSET 54 /* Ethernet 14 + IPv4 20 + TCP 20 */

struct needle {
	__u32 len;
	__u8 bytes[MAX_NEEDLE];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct needle);
} needle SEC(".maps");

SEC("xdp")
int block_substring(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct needle *n = bpf_map_lookup_elem(&needle, &zero);

	if (!n || n->len == 0 || n->len > MAX_NEEDLE)
		return XDP_PASS;
	for (int start = 0; start < WINDOW; start++) {
		int j;
		for (j = 0; j < MAX_NEEDLE && j < n->len; j++) {
			if (p + start + j + 1 > end)
				return XDP_PASS;
			if (p[start + j] != n->bytes[j])
				break;
		}
		if (j == n->len)
			return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
