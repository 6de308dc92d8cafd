"""Trace event: on-CPU sampling with kernel and user stacks (a port of Rex's
``trace_event``).

What it does
    A perf event program samples every CPU (attach with a frequency or a
    period). Each sample counts under the sampled task's name and the ids of
    its kernel and user call stacks, which the ``StackTrace`` map holds:
    user space joins the two to print flame-graph-style stacks.

How to run it
    ext = pykex.load("examples/rex/trace_event.py")
    with ext.sample.attach(frequency=99):
        time.sleep(5)
    for key, count in ext.counts.items():
        print(key.comm, count, ext.stacks[key.kernel_stack][:4] if key.kernel_stack >= 0 else "")
"""

from pykex import (
    BPF_F_FAST_STACK_CMP,
    Bytes,
    HashMap,
    PerfEventContext,
    StackTrace,
    Struct,
    comm,
    i64,
    perf_event,
    u64,
)


class Key(Struct):
    comm: Bytes[16]
    kernel_stack: i64  # negative: no stack (see docs/language.md, get_stackid)
    user_stack: i64


MIN_PERIOD = 0  # samples of a shorter period are ignored; 0 keeps them all
FLAGS = BPF_F_FAST_STACK_CMP  # documented here: get_stackid compares stacks by hash

counts = HashMap[Key, u64](max_entries=10000)
stacks = StackTrace(max_entries=10000)


@perf_event()
def sample(ctx: PerfEventContext) -> int:
    if ctx.sample_period < MIN_PERIOD:
        return 0
    key = Key(comm=comm())
    key.kernel_stack = ctx.get_stackid(stacks)
    key.user_stack = ctx.get_stackid(stacks, user=True)
    if ctx.addr != 0:
        print("address recorded on event:", ctx.addr)
    seen = counts.setdefault(key, 0)
    counts[key] = seen + 1
    return 0
