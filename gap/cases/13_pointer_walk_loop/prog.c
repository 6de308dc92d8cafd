// Trailer check: walk the UDP payload two bytes at a time up to the end of
// the packet, folding the 16-bit words into a ones'-complement sum, and drop
// packets whose payload sums to 0xffff (a marker used by a test traffic
// generator).
//
// Safe: every word is read after `w + 2 > end` proves it is in the packet,
// and the cursor moves forward two bytes per step, so the loop ends at the
// end of the packet (at most 65,535 bytes).
// Rejected: the loop has no constant bound, only the packet's end; the
// verifier walks it step by step until it gives up.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PAYLOAD_OFFSET 42 /* Ethernet 14 + IPv4 20 + UDP 8 */

SEC("xdp")
int payload_sum(struct xdp_md *ctx)
{
	unsigned char *w = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 sum = 0;

	while (w + 2 <= end) {
		sum += w[0] << 8 | w[1];
		w += 2;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
