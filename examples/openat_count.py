"""Count openat(2) calls per process with the syscalls/sys_enter_openat tracepoint.

What it does
    Each time any thread enters openat(2), the program adds one to the
    counter of its process (the thread group id, what ``ps`` calls the
    PID). The counter is a field updated with ``atomic_add``, so threads of
    one process counting on several CPUs at once lose nothing.

How to run it
    pykex check examples/openat_count.py

    From Python (as root)::

        ext = pykex.load("examples/openat_count.py")
        with ext.count_openat.attach():
            time.sleep(5)
        top = sorted(ext.calls.items(), key=lambda item: -item[1].count)[:10]
        for pid, calls in top:
            print(pid, calls.count)
"""

from pykex import HashMap, Struct, TracepointContext, atomic_add, current_pid, tracepoint, u32, u64


class Calls(Struct):
    count: u64


# Process id -> its openat calls since the program was attached.
calls = HashMap[u32, Calls](max_entries=16384)


@tracepoint("syscalls/sys_enter_openat")
def count_openat(ctx: TracepointContext) -> int:
    process = calls.setdefault(current_pid(), Calls(count=0))
    atomic_add(process.count, 1)
    return 0
