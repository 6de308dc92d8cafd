// Longest-line detector: scan up to 1,500 payload bytes of a UDP packet and
// record the length of its longest line ('\n'-terminated run of bytes).
// Over-long lines in text protocols are a classic overflow-attempt signature.
//
// Safe: every byte is read only after `p + i + 1 > end` proves it lies in the
// packet, the loop has a constant bound (1,500) and the only write is to the
// single slot of an array map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_PAYLOAD 1500
#define PAYLOAD_OFFSET 42 /* Ethernet 14 + IPv4 20 + UDP 8 */

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
	__u32 current = 0, longest = 0, zero = 0;

	for (int i = 0; i < MAX_PAYLOAD; i++) {
		if (p + i + 1 > end)
			break;
		if (p[i] == '\n') {
			current = 0;
			continue;
		}
		current++;
		if (current > longest)
			longest = current;
	}
	__u32 *slot = bpf_map_lookup_elem(&longest_line, &zero);
	if (slot)
		*slot = longest;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
