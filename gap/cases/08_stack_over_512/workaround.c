// Workaround: build the report in a per-CPU scratch map value instead of on
// the stack. Cost: a second map, a lookup (and its failure path) per packet.
//
// Sample the first 320 packet bytes into a local buffer, then let a helper
// function build a report (length and first 224 bytes) on its own stack and
// store it in the `reports` map.
//
// Safe: each packet byte is read after a bounds check, and every buffer
// index is a constant-bounded loop counter.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SAMPLE 320
#define HEAD 224

struct sample {
	__u64 len;
	__u8 bytes[SAMPLE];
};

struct report {
	__u64 len;
	__u8 head[HEAD];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct report);
} reports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct report);
} scratch SEC(".maps");

static __attribute__((noinline)) int publish(const struct sample *s)
{
	__u32 zero = 0;
	struct report *r = bpf_map_lookup_elem(&scratch, &zero);

	if (!r)
		return -1;
	r->len = s->len;
	__builtin_memcpy(r->head, s->bytes, HEAD);
	return bpf_map_update_elem(&reports, &zero, r, BPF_ANY);
}

SEC("xdp")
int sample_head(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	struct sample s = {};

	for (int i = 0; i < SAMPLE; i++) {
		if (p + i + 1 > end)
			break;
		s.bytes[i] = p[i];
		s.len = i + 1;
	}
	publish(&s);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
