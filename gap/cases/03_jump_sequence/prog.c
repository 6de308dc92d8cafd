// Delimiter statistics for HTTP requests: for each of the first 1,500
// payload bytes, count sixteen URL and header delimiters, one counter each:
//   & = / ? % + ; #  space , : @ ! $ * ~
// and add the counts to slots 0..15 of `delimiter_counts`.
//
// Safe: each byte is read after a check that it is inside the packet, the
// loop has a constant bound and every counter index is a constant.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SCAN_BYTES 1500
#define PAYLOAD_OFFSET 54 /* Ethernet 14 + IPv4 20 + TCP 20 */
#define KINDS 16

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KINDS);
	__type(key, __u32);
	__type(value, __u64);
} delimiter_counts SEC(".maps");

SEC("xdp")
int delimiter_stats(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + PAYLOAD_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u64 counts[KINDS] = {};

	for (int i = 0; i < SCAN_BYTES; i++) {
		if (p + i + 1 > end)
			break;
		switch (p[i]) {
		case '&': counts[0]++; break;
		case '=': counts[1]++; break;
		case '/': counts[2]++; break;
		case '?': counts[3]++; break;
		case '%': counts[4]++; break;
		case '+': counts[5]++; break;
		case ';': counts[6]++; break;
		case '#': counts[7]++; break;
		case ' ': counts[8]++; break;
		case ',': counts[9]++; break;
		case ':': counts[10]++; break;
		case '@': counts[11]++; break;
		case '!': counts[12]++; break;
		case '$': counts[13]++; break;
		case '*': counts[14]++; break;
		case '~': counts[15]++; break;
		}
	}
	for (__u32 k = 0; k < KINDS; k++) {
		__u32 key = k;
		__u64 *slot = bpf_map_lookup_elem(&delimiter_counts, &key);
		if (slot)
			*slot += counts[key % KINDS];
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
