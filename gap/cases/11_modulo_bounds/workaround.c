// Workaround: add a check the program can never fail (`backend >= BACKENDS`)
// after the modulo, so the verifier learns the bound, and hide the value from
// clang with an empty asm statement first (clang knows the check is dead and
// would delete it). Cost: a compiler barrier and a dead branch.
//
// Consistent hashing onto 10 backends: hash the IPv4 source address and
// count the packet in slot `hash % 10` of a local per-backend tally, then
// publish the chosen backend's tally.
//
// Safe: `hash % 10` is always in 0..9 and indexes a ten-element array.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BACKENDS 10

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} chosen_backend SEC(".maps");

SEC("xdp")
int pick_backend(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 weight[BACKENDS] = {1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
	__u32 zero = 0;

	if (p + 34 > end)
		return XDP_PASS;
	__u32 saddr = p[26] << 24 | p[27] << 16 | p[28] << 8 | p[29];
	__u32 hash = saddr * 2654435761u;
	__u32 backend = (hash >> 16) % BACKENDS;
	asm volatile("" : "+r"(backend));
	if (backend >= BACKENDS) /* cannot happen; tells the verifier the bound */
		return XDP_PASS;
	__u32 value = backend << 8 | weight[backend];

	bpf_map_update_elem(&chosen_backend, &zero, &value, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
