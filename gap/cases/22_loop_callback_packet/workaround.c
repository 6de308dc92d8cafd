// Workaround: clamp the callback's index with a check that can never fail
// (`i >= FOLD_BYTES`). Cost: a redundant branch on every iteration.
//
// XOR-fold the first 256 payload bytes into one byte with bpf_loop (the
// helper that keeps a loop body verified once), reading the packet through
// pointers passed in the loop's context, and store it in `payload_fold`.
//
// Safe: the callback checks `p + i + 1 > end` before every read.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define FOLD_BYTES 256
#define PAYLOAD_OFFSET 42

struct fold_state {
	unsigned char *p;
	unsigned char *end;
	__u8 fold;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} payload_fold SEC(".maps");

static int fold_byte(__u32 i, struct fold_state *s)
{
	if (i >= FOLD_BYTES) /* bpf_loop never passes more; the verifier must be told */
		return 1;
	if (s->p + i + 1 > s->end)
		return 1; /* stop */
	s->fold ^= s->p[i];
	return 0;
}

SEC("xdp")
int fold_payload(struct xdp_md *ctx)
{
	struct fold_state s = {
		.p = (void *)(long)ctx->data + PAYLOAD_OFFSET,
		.end = (void *)(long)ctx->data_end,
	};
	__u32 zero = 0, fold;

	bpf_loop(FOLD_BYTES, fold_byte, &s, 0);
	fold = s.fold;
	bpf_map_update_elem(&payload_fold, &zero, &fold, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
