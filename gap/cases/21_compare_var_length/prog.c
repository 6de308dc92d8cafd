// memcmp with a runtime length: an operator stores a token (up to 32 bytes,
// its length in `len`) in `token`; packets whose payload starts with the
// token are passed, all others dropped (a port-knocking style gate).
//
// Safe: the payload range [p, p + len) is bounds-checked before comparing,
// and len is at most 32, the token's size.
// Rejected: the verifier does not connect `i < len` with the earlier check
// on `p + len`, so each p[i] looks unchecked.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_TOKEN 32
#define PAYLOAD_OFFSET 42

struct token {
	__u32 len;
	__u8 bytes[MAX_TOKEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct token);
} token SEC(".maps");

SEC("xdp")
int token_gate(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct token *t = bpf_map_lookup_elem(&token, &zero);

	if (!t)
		return XDP_PASS;
	__u32 len = t->len;
	if (len > MAX_TOKEN || p + len > end)
		return XDP_DROP;
	for (__u32 i = 0; i < len; i++)
		if (p[i] != t->bytes[i])
			return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
