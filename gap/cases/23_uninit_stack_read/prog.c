// Label lookup: copy a label (up to 32 bytes, lower-cased) into a local
// buffer, then store the byte the packet's second
// payload byte points at within the label (index < label length) in
// `picked_byte`. Only the bytes that were copied are ever read.
//
// Safe: the buffer is filled for indices 0..len-1, and the index read is
// checked to be below len.
// Rejected for unprivileged loaders: a variable-offset stack read must stay
// within bytes the verifier knows are initialized, and it cannot tell which
// of the 32 were written. Root (CAP_PERFMON) may read uninitialized stack, so
// on this machine the program loads.
// (A plain copy loop would not even compile: clang turns it into a memcpy
// call of variable length, which the BPF backend cannot emit.)
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_LABEL 32
#define PAYLOAD_OFFSET 42

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} picked_byte SEC(".maps");

SEC("xdp")
int pick_label_byte(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	unsigned char label[MAX_LABEL];
	__u32 zero = 0, picked;

	if (p + 2 + MAX_LABEL > end)
		return XDP_PASS;
	__u32 index = p[0], len = p[1];
	if (len > MAX_LABEL || index >= len)
		return XDP_PASS;
	for (__u32 i = 0; i < MAX_LABEL; i++) {
		if (i >= len)
			break;
		label[i] = p[2 + i] | 0x20; /* ASCII lower case */
	}
	picked = label[index];
	bpf_map_update_elem(&picked_byte, &zero, &picked, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
