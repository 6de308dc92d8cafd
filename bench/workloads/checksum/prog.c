// The Internet checksum (RFC 1071) of the TCP payload, stored for the reader.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MAX_WORDS 750

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} result SEC(".maps");

SEC("xdp")
int checksum(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP || ip->ihl != 5)
		return XDP_PASS;
	struct tcphdr *tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > data_end || tcp->doff != 5)
		return XDP_PASS;

	__u16 *word = (void *)(tcp + 1);
	__u32 sum = 0;
	for (int i = 0; i < MAX_WORDS; i++) {
		if ((void *)(word + 1) > data_end)
			break;
		sum += *word++;
	}
	if ((void *)word + 1 <= data_end)
		sum += *(__u8 *)word;  /* an odd trailing byte, padded with zero */
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);

	__u32 zero = 0;
	__u32 *out = bpf_map_lookup_elem(&result, &zero);
	if (!out)
		return XDP_ABORTED;
	*out = (__u16)~sum;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
