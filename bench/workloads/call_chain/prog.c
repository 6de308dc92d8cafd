// Eight BPF-to-BPF calls in a row, each feeding the next; the result depends on the
// packet so none folds away. (Nesting them would need nine frames; the kernel allows 8.)
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __noinline __u32 step1(__u32 x) { return x * 3 + 1; }
static __noinline __u32 step2(__u32 x) { return x * 3 + 2; }
static __noinline __u32 step3(__u32 x) { return x * 3 + 3; }
static __noinline __u32 step4(__u32 x) { return x * 3 + 4; }
static __noinline __u32 step5(__u32 x) { return x * 3 + 5; }
static __noinline __u32 step6(__u32 x) { return x * 3 + 6; }
static __noinline __u32 step7(__u32 x) { return x * 3 + 7; }
static __noinline __u32 step8(__u32 x) { return x * 3 + 8; }

SEC("xdp")
int call_chain(struct xdp_md *ctx)
{
	__u32 x = ctx->data_end - ctx->data;
	x = step1(x);
	x = step2(x);
	x = step3(x);
	x = step4(x);
	x = step5(x);
	x = step6(x);
	x = step7(x);
	x = step8(x);
	return x;
}

char LICENSE[] SEC("license") = "GPL";
