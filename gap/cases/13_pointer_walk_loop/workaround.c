// Workaround: give the walk a constant bound (the largest payload
// the program must handle, here 1,472 bytes of a 1,514-byte frame) next to
// the pointer test. Cost: packets with longer payloads (jumbo frames) are
// summed only partly, a limit the problem did not have.
//
// Trailer check: walk the UDP payload two bytes at a time up to the end of
// the packet, folding the 16-bit words into a ones'-complement sum, and drop
// packets whose payload sums to 0xffff (a marker used by a test traffic
// generator).
//
// Safe: every word is read after `w + 2 > end` proves it is in the packet,
// and the cursor moves forward two bytes per step, so the loop ends at the
// end of the packet (at most 65,535 bytes).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PAYLOAD_OFFSET 42 /* Ethernet 14 + IPv4 20 + UDP 8 */
#define MAX_WORDS 736 /* 1,472 payload bytes */

SEC("xdp")
int payload_sum(struct xdp_md *ctx)
{
	unsigned char *w = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 sum = 0;

	for (int i = 0; i < MAX_WORDS; i++) {
		if (w + 2 > end)
			break;
		sum += w[0] << 8 | w[1];
		w += 2;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
