"""Syscall tracepoints: enter and exit of one system call, per process
(a port of Rex's ``syscall_tp``).

What it does
    ``syscalls/sys_enter_getcwd`` and ``syscalls/sys_exit_getcwd`` count the
    calls each process makes and remember the last result (the length of the
    path, or a negative errno).

How to run it
    ext = pykex.load("examples/rex/syscall_tp.py")
    with ext.enter.attach(), ext.leave.attach():
        os.getcwd()
    print(ext.stats[os.getpid()])
"""

from pykex import HashMap, Struct, TracepointContext, current_pid, i64, tracepoint, u32, u64


class Calls(Struct):
    entered: u64
    exited: u64
    last_result: i64


stats = HashMap[u32, Calls](max_entries=1024)


@tracepoint("syscalls/sys_enter_getcwd")
def enter(ctx: TracepointContext) -> int:
    calls = stats.setdefault(current_pid(), Calls())
    calls.entered += 1
    return 0


@tracepoint("syscalls/sys_exit_getcwd")
def leave(ctx: TracepointContext) -> int:
    calls = stats.setdefault(current_pid(), Calls())
    calls.exited += 1
    calls.last_result = ctx.ret
    return 0
