// Workaround: force the two innermost levels inline so the chain has eight
// frames. Cost: the parser's structure now depends on a verifier constant,
// and any deeper format needs more levels inlined (code duplication).
//
// Nested TLV walk: a record may contain a record, up to nine levels deep;
// each level is parsed by its own (non-inlined) function, as a recursive
// descent parser would be, and the innermost tag is counted.
//
// Safe: each level reads two bytes after a bounds check and moves forward;
// the nesting depth is fixed at nine.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} innermost_tags SEC(".maps");

#define LEVEL(name, next, inlining)                                    \
	static inlining int name(struct xdp_md *ctx, int off)                  \
	{                                                                      \
		unsigned char *p = (void *)(long)ctx->data;                    \
		unsigned char *end = (void *)(long)ctx->data_end;              \
		if (off < 0 || off > 64 || p + off + 2 > end)                  \
			return -1;                                             \
		if (p[off] != 0xfe) /* not a nested record: this is the tag */ \
			return p[off];                                         \
		return next(ctx, off + 2);                                     \
	}

static __always_inline int level9(struct xdp_md *ctx, int off)
{
	unsigned char *p = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;

	if (off < 0 || off > 64 || p + off + 1 > end)
		return -1;
	return p[off];
}

LEVEL(level8, level9, __always_inline)
LEVEL(level7, level8, __attribute__((noinline)))
LEVEL(level6, level7, __attribute__((noinline)))
LEVEL(level5, level6, __attribute__((noinline)))
LEVEL(level4, level5, __attribute__((noinline)))
LEVEL(level3, level4, __attribute__((noinline)))
LEVEL(level2, level3, __attribute__((noinline)))
LEVEL(level1, level2, __attribute__((noinline)))

SEC("xdp")
int nested_tlv(struct xdp_md *ctx)
{
	int tag = level1(ctx, 42); /* TLV data starts after Ethernet+IPv4+UDP */
	if (tag >= 0) {
		__u32 key = tag & 0xff;
		__u64 *slot = bpf_map_lookup_elem(&innermost_tags, &key);
		if (slot)
			__sync_fetch_and_add(slot, 1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
