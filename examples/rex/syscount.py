"""Syscount: system calls counted, failed and timed (a port of Rex's ``syscount``).

What it does
    ``raw_syscalls/sys_enter`` counts each system call by number and notes when
    the calling thread entered it; ``raw_syscalls/sys_exit`` counts failures
    (negative results) and adds the time spent to the call's total latency.

How to run it
    ext = pykex.load("examples/rex/syscount.py")
    with ext.enter.attach(), ext.leave.attach():
        time.sleep(1)
    for number, stats in sorted(ext.syscalls.items(), key=lambda kv: -kv[1].count)[:10]:
        print(number, stats.count, stats.errors, stats.latency_ns / max(stats.count, 1))
"""

from pykex import HashMap, Struct, TracepointContext, ktime_ns, pid_tgid, tracepoint, u32, u64


class Stats(Struct):
    count: u64
    errors: u64
    latency_ns: u64


syscalls = HashMap[u32, Stats](max_entries=512)
# (thread id << 32 | syscall number) -> when that thread entered the call.
started = HashMap[u64, u64](max_entries=4096)


def started_key(number: u32) -> u64:
    return (pid_tgid() & 0xFFFFFFFF) << 32 | u64(number)


@tracepoint("raw_syscalls/sys_enter")
def enter(ctx: TracepointContext) -> int:
    number = u32(ctx.id & 0xFFFFFFFF)
    stats = syscalls.setdefault(number, Stats())
    stats.count += 1
    started[started_key(number)] = ktime_ns()
    return 0


@tracepoint("raw_syscalls/sys_exit")
def leave(ctx: TracepointContext) -> int:
    number = u32(ctx.id & 0xFFFFFFFF)
    stats = syscalls.setdefault(number, Stats())
    if ctx.ret < 0:
        stats.errors += 1
    key = started_key(number)
    if (entered := started.get(key)) is not None:
        stats.latency_ns += ktime_ns() - entered
        del started[key]
    return 0
