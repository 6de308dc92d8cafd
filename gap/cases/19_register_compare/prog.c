// Indexed read from a configured table: the map value holds a count (at
// most 32) and 32 entries; the packet's first payload byte selects an entry,
// which is used only if it is below the count. The selected entry becomes
// the packet's verdict class in `selected`.
//
// Safe: index < count and count <= 32, so index <= 31.
// Once rejected: older verifiers could not carry the bound of one register
// (count) over to another (index) through a comparison of the two. Linux 6.18
// refines both registers on such a comparison, and this program loads.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ENTRIES 32

struct table {
	__u32 count;
	__u32 entries[ENTRIES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct table);
} tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} selected SEC(".maps");

SEC("xdp")
int table_select(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data + 42;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	if (p + 1 > end)
		return XDP_PASS;
	struct table *t = bpf_map_lookup_elem(&tables, &zero);
	if (!t)
		return XDP_PASS;
	__u32 count = t->count, index = p[0];
	if (count > ENTRIES || index >= count)
		return XDP_PASS;
	__u32 entry = t->entries[index];
	bpf_map_update_elem(&selected, &zero, &entry, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
