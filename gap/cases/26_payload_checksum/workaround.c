// Workaround: drop the helper and hand-write the ones'-complement sum as a
// bounded loop over 16-bit words, each re-checked against the packet end.
// Cost: a re-implemented checksum (byte order and folding by hand) and a
// branch per word.
//
// Payload checksum: sum the UDP payload (its length from the UDP header,
// rounded down to a multiple of 4, at most 512 bytes) with the kernel's
// bpf_csum_diff helper, and store the folded 16-bit sum in `payload_csum`.
//
// Safe: the range [p, p + len) is bounds-checked against the packet end
// before the call, and len is a multiple of 4 no larger than 512, as the
// helper requires.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SUMMED 512
#define PAYLOAD_OFFSET 42

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} payload_csum SEC(".maps");

SEC("xdp")
int checksum_payload(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	unsigned char *p = data + PAYLOAD_OFFSET;
	__u32 zero = 0;

	if (p > end)
		return XDP_PASS;
	__u32 len = ((data[38] << 8 | data[39]) - 8) & ~3u;
	if (len > MAX_SUMMED || p + len > end)
		return XDP_PASS;
	__u64 sum = 0;
	for (__u32 i = 0; i < MAX_SUMMED; i += 2) {
		if (i >= len || p + i + 2 > end)
			break;
		sum += p[i] | p[i + 1] << 8; /* same byte order as bpf_csum_diff */
	}
	__u32 folded = (sum & 0xffff) + (sum >> 16);
	folded = (folded & 0xffff) + (folded >> 16);
	bpf_map_update_elem(&payload_csum, &zero, &folded, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
