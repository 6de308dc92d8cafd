// Send the first 64 bytes of each packet to user space through a ring buffer.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define RECORD_SIZE 64

struct record {
	__u8 head[RECORD_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 128 << 20);
} events SEC(".maps");

SEC("xdp")
int ringbuf_output(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + RECORD_SIZE > data_end)
		return XDP_PASS;
	struct record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r)
		return XDP_ABORTED;
	__builtin_memcpy(r->head, data, RECORD_SIZE);
	bpf_ringbuf_submit(r, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
