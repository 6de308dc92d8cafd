// Workaround: replace the branch tree by a 256-entry class table in .rodata
// (kind + 1 for a delimiter, 0 otherwise) and count into a 32-slot array
// indexed by the table value (masked so the verifier sees the bound). The loop body has a single branch, so the
// verifier's stack of pending branches no longer grows with the payload.
// Cost: a hand-built lookup table and a variable-offset stack write.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SCAN_BYTES 1500
#define PAYLOAD_OFFSET 54
#define KINDS 16

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KINDS);
	__type(key, __u32);
	__type(value, __u64);
} delimiter_counts SEC(".maps");

static const unsigned char kind_of[256] = {
	['&'] = 1, ['='] = 2, ['/'] = 3, ['?'] = 4, ['%'] = 5, ['+'] = 6,
	[';'] = 7, ['#'] = 8, [' '] = 9, [','] = 10, [':'] = 11, ['@'] = 12,
	['!'] = 13, ['$'] = 14, ['*'] = 15, ['~'] = 16,
};

SEC("xdp")
int delimiter_stats(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u64 counts[32] = {};

	for (int i = 0; i < SCAN_BYTES; i++) {
		if (p + i + 1 > end)
			break;
		counts[kind_of[p[i]] & 31]++;
	}
	for (__u32 k = 0; k < KINDS; k++) {
		__u32 key = k;
		__u64 *slot = bpf_map_lookup_elem(&delimiter_counts, &key);
		if (slot)
			*slot += counts[(key % KINDS) + 1];
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
