// Workaround: keep the two counters in a per-CPU map value instead of
// registers. Every load from the map is an unknown scalar to the verifier, so
// the paths through the loop body stop multiplying and it is checked once per
// iteration. `volatile` stops clang from promoting them back into registers.
// The price: memory round trips for every byte and a second map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_PAYLOAD 1500
#define PAYLOAD_OFFSET 42

struct line_state {
	__u32 current;
	__u32 longest;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct line_state);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} longest_line SEC(".maps");

SEC("xdp")
int payload_scan(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	volatile struct line_state *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return XDP_PASS;
	s->current = 0;
	s->longest = 0;
	for (int i = 0; i < MAX_PAYLOAD; i++) {
		if (p + i + 1 > end)
			break;
		if (p[i] == '\n') {
			s->current = 0;
			continue;
		}
		s->current++;
		if (s->current > s->longest)
			s->longest = s->current;
	}
	__u32 *slot = bpf_map_lookup_elem(&longest_line, &zero);
	if (slot)
		*slot = s->longest;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
