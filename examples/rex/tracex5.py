"""Syscall monitor: the arguments of write, read and mmap calls (in the spirit
of the kernel's and Rex's ``tracex5``, which filter system calls with seccomp
kprobes; tracepoints carry the same arguments on kernels without kprobes).

What it does
    For each process it keeps the last ``write``, ``read`` and ``mmap`` it made,
    with their arguments, and prints one line per call to the trace pipe
    (``write fd 1 size 5``). ``buf`` is a user pointer: ``u64(ctx.buf)`` is its
    address (assigning it to a ``Bytes[N]`` would copy the string instead).

How to run it
    ext = pykex.load("examples/rex/tracex5.py")
    with ext.on_write.attach(), ext.on_read.attach(), ext.on_mmap.attach():
        os.write(1, b"hello")
    print(ext.last[(os.getpid() << 8) | WRITE])
"""

from pykex import HashMap, Struct, TracepointContext, current_pid, tracepoint, u64

WRITE = 1
READ = 0
MMAP = 9


class Call(Struct):
    first: u64
    second: u64
    third: u64


# (process id << 8 | syscall number) -> the arguments of its last call.
last = HashMap[u64, Call](max_entries=4096)


def remember(number: u64, first: u64, second: u64, third: u64) -> None:
    last[u64(current_pid()) << 8 | number] = Call(first=first, second=second, third=third)


@tracepoint("syscalls/sys_enter_write")
def on_write(ctx: TracepointContext) -> int:
    print("write fd", ctx.fd, "size", ctx.count)
    remember(WRITE, ctx.fd, u64(ctx.buf), ctx.count)
    return 0


@tracepoint("syscalls/sys_enter_read")
def on_read(ctx: TracepointContext) -> int:
    remember(READ, ctx.fd, u64(ctx.buf), ctx.count)
    return 0


@tracepoint("syscalls/sys_enter_mmap")
def on_mmap(ctx: TracepointContext) -> int:
    print("mmap len", ctx.len)
    remember(MMAP, ctx.addr, ctx.len, ctx.prot)
    return 0
