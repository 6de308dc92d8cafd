"""C programs compiled with clang as independent BPF objects for the ELF tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HEADERS = r"""
typedef unsigned char __u8;
typedef unsigned int __u32;
typedef unsigned long long __u64;
#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
struct xdp_md { __u32 data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex; };
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   __u64 flags) = (void *)2;
char LICENSE[] SEC("license") = "GPL";
"""

# An XDP program counting packets per length in a hash map, and all packets in .bss.
XDP_COUNTER = HEADERS + r"""
struct {
    __uint(type, 1);  /* BPF_MAP_TYPE_HASH */
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 64);
} lengths SEC(".maps");

__u64 packets = 0;

SEC("xdp") int count(struct xdp_md *ctx)
{
    __u32 len = ctx->data_end - ctx->data;
    __u64 one = 1, *seen = bpf_map_lookup_elem(&lengths, &len);
    if (seen)
        __sync_fetch_and_add(seen, 1);
    else
        bpf_map_update_elem(&lengths, &len, &one, 0);
    __sync_fetch_and_add(&packets, 1);
    return 2;  /* XDP_PASS */
}
"""

# bpf-to-bpf calls (two levels, one static helper used by two programs), a
# .rodata constant, .data initial contents and a static .bss variable.
CALLS_AND_GLOBALS = HEADERS + r"""
const volatile __u32 factor = 7;
__u64 base = 1000;
static __u64 calls;

static __attribute__((noinline)) __u64 scale(__u64 x)
{
    calls++;
    return x * factor;
}

static __attribute__((noinline)) __u64 offset_scale(__u64 x)
{
    return scale(x) + base;
}

SEC("xdp") int by_length(struct xdp_md *ctx)
{
    return offset_scale(ctx->data_end - ctx->data) & 0xff;
}

SEC("xdp") int constant(struct xdp_md *ctx)
{
    return scale(3);
}
"""

# A hash map whose value holds a bpf_spin_lock: only loads with BTF.
SPIN_LOCK = HEADERS + r"""
struct bpf_spin_lock { __u32 val; };
struct guarded { struct bpf_spin_lock lock; __u64 count; };
static void (*bpf_spin_lock)(struct bpf_spin_lock *) = (void *)93;
static void (*bpf_spin_unlock)(struct bpf_spin_lock *) = (void *)94;

struct {
    __uint(type, 2);  /* BPF_MAP_TYPE_ARRAY */
    __type(key, __u32);
    __type(value, struct guarded);
    __uint(max_entries, 1);
} guarded SEC(".maps");

SEC("xdp") int locked(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct guarded *g = bpf_map_lookup_elem(&guarded, &zero);
    if (!g)
        return 0;
    bpf_spin_lock(&g->lock);
    g->count += 5;
    bpf_spin_unlock(&g->lock);
    return 2;
}
"""

# kfuncs declared extern in .ksyms (open-coded iterator), and a string in .rodata.
KFUNC_ITERATOR = HEADERS + r"""
static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;
struct bpf_iter_num { __u64 opaque[1]; } __attribute__((aligned(8)));
extern int bpf_iter_num_new(struct bpf_iter_num *, int, int) SEC(".ksyms");
extern int *bpf_iter_num_next(struct bpf_iter_num *) SEC(".ksyms");
extern void bpf_iter_num_destroy(struct bpf_iter_num *) SEC(".ksyms");

SEC("xdp") int sum_to_ten(struct xdp_md *ctx)
{
    static const char message[] = "sum %d\n";
    struct bpf_iter_num it;
    int *value, sum = 0;
    bpf_iter_num_new(&it, 0, 11);
    while ((value = bpf_iter_num_next(&it)))
        sum += *value;
    bpf_iter_num_destroy(&it);
    bpf_trace_printk(message, sizeof(message), sum);
    return sum;
}
"""


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} installed")


def compile_c(source: str, directory: Path, name: str = "prog") -> bytes:
    """``clang -O2 -g -target bpf -c`` of ``source``; the object's bytes."""
    require_tools("clang")
    path = directory / f"{name}.c"
    path.write_text(source)
    output = directory / f"{name}.o"
    subprocess.run(
        ["clang", "-O2", "-g", "-target", "bpf", "-c", str(path), "-o", str(output)],
        check=True,
        capture_output=True,
    )
    return output.read_bytes()


__all__ = [
    "CALLS_AND_GLOBALS",
    "KFUNC_ITERATOR",
    "SPIN_LOCK",
    "XDP_COUNTER",
    "compile_c",
    "require_tools",
]

