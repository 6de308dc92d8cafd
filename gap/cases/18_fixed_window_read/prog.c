// Read the last byte of a variable-length option: the payload's first byte
// is an option length (1..64), and the option's last byte (at offset
// len - 1 from the option start) is stored in `last_option_byte`.
//
// Safe: 1 <= len <= 64 is checked, and the 64 bytes after the length byte
// are bounds-checked, so the byte at len - 1 is inside the packet.
// Rejected on some clang/kernel pairs because clang folds the two
// comparisons into one unsigned check on `len - 1` held in a copy.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PAYLOAD_OFFSET 42
#define MAX_OPTION 64

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} last_option_byte SEC(".maps");

SEC("xdp")
int last_byte(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	if (p + 1 + MAX_OPTION > end)
		return XDP_PASS;
	__u32 len = p[0];
	if (len < 1 || len > MAX_OPTION)
		return XDP_PASS;
	__u32 last = p[1 + len - 1];
	bpf_map_update_elem(&last_option_byte, &zero, &last, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
