"""Atomic counters hammered from every CPU at once (a port of Rex's ``atomic``).

What it does
    Each run adds to three counters of one shared array element: ``atomic``
    with ``atomic_add`` (exact under contention), ``plain`` with ``+=`` (a
    read-modify-write that concurrent CPUs can interleave, so it may lose
    updates) and ``by_cpu[cpu]`` (each CPU its own slot, exact again).

How to run it
    Run ``bump`` on several CPUs at once (tests/rex/test_samples.py pins one
    thread per CPU and uses pykex.kernel.testrun.run_raw_tracepoint(cpu=...)).
"""

from pykex import (
    Array,
    ArrayMap,
    RawTracepointContext,
    Struct,
    atomic_add,
    raw_tracepoint,
    smp_processor_id,
    u64,
)

MAX_CPUS = 64


class Counters(Struct):
    atomic: u64
    plain: u64
    by_cpu: Array[u64, MAX_CPUS]


counters = ArrayMap[Counters](max_entries=1)


@raw_tracepoint("sys_enter")
def bump(ctx: RawTracepointContext) -> int:
    c = counters[0]
    amount = ctx.arg(0)
    atomic_add(c.atomic, amount)
    c.plain += amount
    atomic_add(c.by_cpu[smp_processor_id()], amount)
    return 0
