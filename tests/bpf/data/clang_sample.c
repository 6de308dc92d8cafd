typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef long long s64;
typedef int s32;
typedef short s16;
typedef signed char s8;

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_loop)(u32 n, void *cb, void *ctx, u64 flags) = (void *)181;

u64 counter;
u64 table[16];
s64 signed_values[4];

struct xdp_md { u32 data; u32 data_end; u32 data_meta; u32 ingress_ifindex; u32 rx_queue_index; u32 egress_ifindex; };

static __attribute__((noinline)) u64 mix(u64 a, u64 b)
{
	u64 r = a * 0x9e3779b97f4a7c15ULL;
	r ^= b >> 7;
	r += (a << 3) | (b & 0xff);
	if ((s64)r < -5)
		r = -r;
	return r % 1000003 + r / 7;
}

static int callback(u32 index, void *ctx)
{
	*(u64 *)ctx += index;
	return 0;
}

__attribute__((section("xdp"), used)) int prog_xdp(struct xdp_md *ctx)
{
	u8 *data = (u8 *)(long)ctx->data;
	u8 *end = (u8 *)(long)ctx->data_end;
	u64 acc = 0;
	if (data + 14 > end)
		return 2;
	u16 proto = __builtin_bswap16(*(u16 *)(data + 12));
	s32 sv = (s8)data[0];
	for (int i = 0; i < 8 && data + i + 1 <= end; i++)
		acc += data[i] * (i + 1);
	__sync_fetch_and_add(&counter, 1);
	u64 old = __sync_fetch_and_add(&table[proto & 15], acc);
	__sync_fetch_and_or(&table[1], 4);
	__sync_fetch_and_and(&table[2], 4);
	__sync_fetch_and_xor(&table[3], old);
	__sync_val_compare_and_swap(&table[4], acc, old);
	__sync_lock_test_and_set(&table[5], sv);
	u32 small = (u32)acc;
	if (small > 77 && (s32)small < 1000)
		acc = mix(acc, bpf_ktime_get_ns());
#ifdef CPU_V4
	signed_values[0] = signed_values[1] / (sv | 1);
	signed_values[2] = signed_values[3] % (sv | 1);
#endif
	bpf_loop(4, callback, &acc, 0);
	return acc & 3;
}
