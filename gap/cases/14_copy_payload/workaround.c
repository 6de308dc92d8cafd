// Workaround: re-check every byte against the packet end inside the loop
// (`p + i + 1 > end`), and bound the loop by a constant. Cost: one extra
// branch per byte, and a loop written around the verifier, not around len.
//
// Capture the payload of UDP packets: copy `len` bytes (len = UDP length -
// 8, at most 256) into the `captures` map value, as memcpy would.
//
// Safe: the whole source range [p, p + len) is bounds-checked against the
// packet end before the copy, and len is at most the 256-byte destination.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_CAPTURE 256

struct capture {
	__u32 len;
	__u8 bytes[MAX_CAPTURE];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct capture);
} captures SEC(".maps");

SEC("xdp")
int copy_payload(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	unsigned char *p = data + 42;
	__u32 zero = 0;

	if (p > end)
		return XDP_PASS;
	__u32 len = (data[38] << 8 | data[39]) - 8; /* UDP length field */
	if (len > MAX_CAPTURE || p + len > end)
		return XDP_PASS;
	struct capture *c = bpf_map_lookup_elem(&captures, &zero);
	if (!c)
		return XDP_PASS;
	for (__u32 i = 0; i < MAX_CAPTURE; i++) {
		if (i >= len || p + i + 1 > end)
			break;
		c->bytes[i] = p[i];
	}
	c->len = len;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
