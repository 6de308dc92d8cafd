// Workaround: run the outer loop with bpf_loop, so the body (one start
// position, compared against the needle) is verified once instead of 512
// times. Cost: a callback function, a context struct carrying the packet
// pointers and the result, and about 7 ns per callback call at run time.
//
// strstr over an HTTP request: drop the packet if the first 512 payload
// bytes contain the needle stored in `needle` (up to 16 bytes, its length in
// `len`), e.g. a path an operator wants to block.
//
// Safe: every payload byte is read after a bounds check, the needle index is
// below 16, and both loops have constant bounds.
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

struct search {
	unsigned char *p;
	unsigned char *end;
	struct needle *n;
	int found;
};

static int try_start(__u32 start, struct search *s)
{
	int j;

	start &= WINDOW - 1; /* bpf_loop's index has no bounds for the verifier */
	for (j = 0; j < MAX_NEEDLE && j < s->n->len; j++) {
		if (s->p + start + j + 1 > s->end)
			return 1; /* ran off the packet: stop searching */
		if (s->p[start + j] != s->n->bytes[j])
			break;
	}
	if (j == s->n->len) {
		s->found = 1;
		return 1;
	}
	return 0;
}

SEC("xdp")
int block_substring(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct search s = {
		.p = (void *)(long)ctx->data + PAYLOAD_OFFSET,
		.end = (void *)(long)ctx->data_end,
		.n = bpf_map_lookup_elem(&needle, &zero),
	};

	if (!s.n || s.n->len == 0 || s.n->len > MAX_NEEDLE)
		return XDP_PASS;
	bpf_loop(WINDOW, try_start, &s, 0);
	return s.found ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
