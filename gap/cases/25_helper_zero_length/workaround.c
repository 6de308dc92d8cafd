// Workaround: handle len == 0 separately before calling the helper.
// Cost: a special case that exists only for the verifier.
//
// Copy the first `len` payload bytes (len from the payload's first byte,
// at most 32) into `snippets` with bpf_xdp_load_bytes, which also works for
// multi-buffer packets; a length of zero copies nothing.
//
// Safe: the helper checks the offset and length against the packet itself
// and returns an error instead of copying when they do not fit; the
// destination is a 32-byte stack buffer and len <= 32.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SNIPPET 32
#define PAYLOAD_OFFSET 42

struct snippet {
	__u32 len;
	__u8 bytes[MAX_SNIPPET];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct snippet);
} snippets SEC(".maps");

SEC("xdp")
int snippet(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	struct snippet s = {};
	__u32 zero = 0;

	if (p + 1 > end)
		return XDP_PASS;
	__u32 len = p[0];
	if (len > MAX_SNIPPET)
		return XDP_PASS;
	if (len == 0) /* nothing to copy; the helper may not be called with 0 */
		goto store;
	if (bpf_xdp_load_bytes(ctx, PAYLOAD_OFFSET + 1, s.bytes, len) < 0)
		return XDP_PASS;
store:
	s.len = len;
	bpf_map_update_elem(&snippets, &zero, &s, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
