// Full header walk in one program: Ethernet, up to two VLAN tags, IPv4 (with
// options) or IPv6 (with up to six extension headers), then every TCP option
// (up to 40 bytes). The MSS option's value is stored in `seen_mss`; packets
// that carry an MSS below 536 are dropped.
//
// Safe: every header is read only after a check that it lies inside the
// packet; every loop has a constant bound; option lengths of 0 or 1 end the
// walk, so each step moves forward.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_VLANS 2
#define MAX_EXT_HEADERS 6
#define MAX_OPTION_BYTES 40

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} seen_mss SEC(".maps");

static __always_inline int is_ext_header(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING ||
	       next == IPPROTO_DSTOPTS || next == IPPROTO_FRAGMENT;
}

SEC("xdp")
int tcp_options(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__u16 proto;
	__u8 l4;

	if (data + sizeof(*eth) > end)
		return XDP_PASS;
	proto = eth->h_proto;
	for (int v = 0; v < MAX_VLANS; v++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr *vlan = data + off;
		if ((void *)(vlan + 1) > end)
			return XDP_PASS;
		proto = vlan->proto;
		off += sizeof(*vlan);
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return XDP_PASS;
		l4 = ip->protocol;
		off += ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		l4 = ip6->nexthdr;
		off += sizeof(*ip6);
		for (int e = 0; e < MAX_EXT_HEADERS; e++) {
			if (!is_ext_header(l4))
				break;
			__u8 *ext = data + off;
			if ((void *)(ext + 2) > end)
				return XDP_PASS;
			l4 = ext[0];
			off += l4 == IPPROTO_FRAGMENT ? 8 : (ext[1] + 1) * 8;
		}
	} else {
		return XDP_PASS;
	}
	if (l4 != IPPROTO_TCP)
		return XDP_PASS;

	struct tcphdr *tcp = data + off;
	if ((void *)(tcp + 1) > end)
		return XDP_PASS;
	__u32 opt_end = off + tcp->doff * 4;
	off += sizeof(*tcp);
	for (int i = 0; i < MAX_OPTION_BYTES; i++) {
		if (off >= opt_end)
			break;
		__u8 *opt = data + off;
		if ((void *)(opt + 1) > end)
			return XDP_PASS;
		if (opt[0] == 0) /* end of options */
			break;
		if (opt[0] == 1) { /* no-op */
			off++;
			continue;
		}
		if ((void *)(opt + 2) > end || opt[1] < 2)
			return XDP_PASS;
		if (opt[0] == 2 && opt[1] == 4) { /* MSS */
			if ((void *)(opt + 4) > end)
				return XDP_PASS;
			__u32 mss = (opt[2] << 8) | opt[3], zero = 0;
			bpf_map_update_elem(&seen_mss, &zero, &mss, BPF_ANY);
			if (mss < 536)
				return XDP_DROP;
		}
		off += opt[1];
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
