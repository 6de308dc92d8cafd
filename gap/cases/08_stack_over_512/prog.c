// Sample the first 320 packet bytes into a local buffer, then let a helper
// function build a report (length and first 224 bytes) on its own stack and
// store it in the `reports` map.
//
// Safe: each packet byte is read after a bounds check, and every buffer
// index is a constant-bounded loop counter.
// Rejected: each function fits the 512-byte stack alone (clang checks that),
// but the caller's 328 bytes plus the callee's 232 exceed 512 together, and
// the verifier limits the combined stack of the call chain.
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

static __attribute__((noinline)) int publish(const struct sample *s)
{
	struct report r = {.len = s->len};
	__u32 zero = 0;

	__builtin_memcpy(r.head, s->bytes, HEAD);
	return bpf_map_update_elem(&reports, &zero, &r, BPF_ANY);
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
