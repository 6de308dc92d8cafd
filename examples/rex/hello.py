"""Hello: print from a tracepoint (a port of Rex's ``hello`` sample).

What it does
    Every ``dup(2)`` call prints ``pykex prog: PID=<pid> ...`` to the trace
    pipe (``bpf_trace_printk``) and counts the call for its process.

How to run it
    pykex check examples/rex/hello.py

    From Python (as root)::

        ext = pykex.load("examples/rex/hello.py")
        with ext.hello.attach():
            os.dup(1)
        print(ext.calls[os.getpid()])     # then: cat /sys/kernel/tracing/trace_pipe
"""

from pykex import HashMap, TracepointContext, current_pid, tracepoint, u32, u64

# Process id -> dup() calls seen.
calls = HashMap[u32, u64](max_entries=1024)


@tracepoint("syscalls/sys_enter_dup")
def hello(ctx: TracepointContext) -> int:
    pid = current_pid()
    print("pykex prog: PID =", pid, "fd =", ctx.fildes)
    seen = calls.setdefault(pid, 0)
    calls[pid] = seen + 1
    return 0
