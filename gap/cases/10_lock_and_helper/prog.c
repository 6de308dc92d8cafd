// Per-flow rate meter: under the flow's spin lock, add the packet to the
// byte count and, if the current one-second window has ended (the time
// comes from bpf_ktime_get_ns()), start a new window.
//
// Safe: bpf_ktime_get_ns takes no lock and cannot fail or sleep; the lock is
// released on every path.
// Rejected: the verifier forbids any helper call while a spin lock is held.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct meter {
	struct bpf_spin_lock lock;
	__u64 window_start;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct meter);
} meters SEC(".maps");

SEC("xdp")
int rate_meter(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct meter *m = bpf_map_lookup_elem(&meters, &zero);

	if (!m)
		return XDP_PASS;
	bpf_spin_lock(&m->lock);
	__u64 now = bpf_ktime_get_ns();
	if (now - m->window_start >= 1000000000ull) {
		m->window_start = now;
		m->bytes = 0;
	}
	m->bytes += ctx->data_end - ctx->data;
	bpf_spin_unlock(&m->lock);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
