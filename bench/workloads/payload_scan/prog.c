// Drop TCP packets whose payload contains a 4-byte signature, checked byte by byte.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MAX_PAYLOAD 1500

SEC("xdp")
int payload_scan(struct xdp_md *ctx)
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

	__u8 *payload = (void *)(tcp + 1);
	for (int i = 0; i < MAX_PAYLOAD; i++) {
		__u8 *p = payload + i;
		if ((void *)(p + 4) > data_end)
			break;
		if (p[0] == 'E' && p[1] == 'V' && p[2] == 'I' && p[3] == 'L')
			return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
