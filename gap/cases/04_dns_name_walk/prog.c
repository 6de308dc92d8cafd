// DNS blocklist: hash the query name of a DNS request (UDP port 53) label by
// label, lower-casing each byte (FNV-1a over the wire-format name), and drop
// the packet if the hash is in `blocked_names`.
//
// Safe: every byte is read after a check that it lies inside the packet, the
// label loop and the byte loop have constant bounds (128 labels, 63 bytes per
// label) and the name offset stays below 255 + header.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define NAME_OFFSET (14 + 20 + 8 + 12) /* Ethernet, IPv4, UDP, DNS header */
#define MAX_LABELS 128
#define MAX_LABEL_LEN 63
#define MAX_NAME_LEN 255

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} blocked_names SEC(".maps");

SEC("xdp")
int dns_blocklist(struct xdp_md *ctx)
{
	unsigned char *name = (void *)(long)ctx->data + NAME_OFFSET;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 hash = 2166136261u;
	__u32 pos = 0;

	for (int label = 0; label < MAX_LABELS; label++) {
		if (name + pos + 1 > end)
			return XDP_PASS;
		__u8 len = name[pos];
		if (len == 0)
			break;
		if (len > MAX_LABEL_LEN || pos + 1 + len > MAX_NAME_LEN)
			return XDP_PASS;
		hash = (hash ^ len) * 16777619u;
		pos++;
		for (int i = 0; i < MAX_LABEL_LEN; i++) {
			if (i >= len)
				break;
			if (name + pos + 1 > end)
				return XDP_PASS;
			__u8 c = name[pos];
			if (c >= 'A' && c <= 'Z')
				c |= 0x20;
			hash = (hash ^ c) * 16777619u;
			pos++;
		}
	}
	if (bpf_map_lookup_elem(&blocked_names, &hash))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
