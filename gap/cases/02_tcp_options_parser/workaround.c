// Workaround (Cilium's pattern): split the walk at the L4 boundary. The
// first program parses L2/L3 and stores the TCP offset in a per-CPU scratch
// map; a tail call runs the second, which re-reads the offset, re-bounds it
// for the verifier and walks the options. Cost: a second program, a program
// array, a scratch map and a tail call per packet (and if the tail call
// fails, the options are silently not checked).
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

#define MAX_TCP_OFFSET 256

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tcp_offset SEC(".maps");

/* Slot 0 holds tcp_options_stage; the loader fills it after loading. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} stages SEC(".maps");

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

	__u32 zero = 0;
	__u32 *saved = bpf_map_lookup_elem(&tcp_offset, &zero);
	if (!saved)
		return XDP_PASS;
	*saved = off;
	bpf_tail_call(ctx, &stages, 0);
	return XDP_PASS; /* tail call failed: options unchecked */
}

SEC("xdp")
int tcp_options_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	__u32 *saved = bpf_map_lookup_elem(&tcp_offset, &zero);

	if (!saved)
		return XDP_PASS;
	__u32 off = *saved;
	if (off > MAX_TCP_OFFSET) /* re-bound: the map value is unknown to the verifier */
		return XDP_PASS;

	struct tcphdr *tcp = data + off;
	if ((void *)(tcp + 1) > end)
		return XDP_PASS;
	/* Walk the options with a position relative to their start, masked to
	 * 0..63 on every step: all iterations then share one state shape and
	 * the verifier can prune instead of enumerating offsets. */
	__u8 *opts = (void *)(tcp + 1);
	__u32 opt_len = tcp->doff * 4 - sizeof(*tcp);
	__u32 pos = 0;
	for (int i = 0; i < MAX_OPTION_BYTES; i++) {
		pos &= 0x3f;
		if (pos >= opt_len)
			break;
		__u8 *opt = opts + pos;
		if ((void *)(opt + 1) > end)
			return XDP_PASS;
		if (opt[0] == 0)
			break;
		if (opt[0] == 1) {
			pos++;
			continue;
		}
		if ((void *)(opt + 2) > end || opt[1] < 2)
			return XDP_PASS;
		if (opt[0] == 2 && opt[1] == 4) {
			if ((void *)(opt + 4) > end)
				return XDP_PASS;
			__u32 mss = (opt[2] << 8) | opt[3];
			bpf_map_update_elem(&seen_mss, &zero, &mss, BPF_ANY);
			if (mss < 536)
				return XDP_DROP;
		}
		pos += opt[1];
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
