// Workaround: count with an integer index bounded by a constant instead of
// comparing pointers. Cost: the natural pointer-walking idiom must be
// rewritten.
//
// strnlen on a packet: measure the NUL-terminated string that starts the
// UDP payload (at most 128 bytes) and record its length in `name_length`.
// Written the way C's strnlen is: advance a pointer until NUL or the limit.
//
// Safe: each byte is read after `s + 1 > end` proves it is in the packet,
// and the limit pointer caps the walk at 128 bytes.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_NAME 128
#define PAYLOAD_OFFSET 42

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} name_length SEC(".maps");

SEC("xdp")
int payload_strnlen(struct xdp_md *ctx)
{
	unsigned char *start = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 zero = 0, len = 0;

	for (int i = 0; i < MAX_NAME; i++) {
		if (start + i + 1 > end || start[i] == 0)
			break;
		len = i + 1;
	}
	bpf_map_update_elem(&name_length, &zero, &len, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
