// Workaround: re-bound the quotient with a check that cannot fail, hidden
// from clang (which knows it is dead) by an empty asm statement. Cost: a
// compiler barrier and a dead branch.
//
// Three-byte records (e.g. RGB triples): the payload's first byte gives a
// record area of `len` bytes (at most 255); the number of whole records,
// `len / 3`, selects a per-count weight from a local 86-entry table, and the
// weight is added to slot 0 of `record_weight`.
//
// Safe: len <= 255, so len / 3 <= 85, inside the 86-entry table.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_RECORDS 85

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} record_weight SEC(".maps");

SEC("xdp")
int record_count(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + 42;
	unsigned char *end = (void *)(long)ctx->data_end;
	volatile __u8 weight[MAX_RECORDS + 1];
	__u32 zero = 0;

	for (int i = 0; i <= MAX_RECORDS; i++)
		weight[i] = i < 16 ? 1 : 2; /* small batches count once, big ones twice */
	if (p + 1 > end)
		return XDP_PASS;
	__u32 records = p[0] / 3;
	asm volatile("" : "+r"(records));
	if (records > MAX_RECORDS) /* cannot happen; tells the verifier the bound */
		return XDP_PASS;
	__u64 *slot = bpf_map_lookup_elem(&record_weight, &zero);
	if (slot)
		__sync_fetch_and_add(slot, weight[records]);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
