"""killsnoop: trace signals sent with kill(2), with the sender and the result.

A port of BCC's tools/killsnoop.py. BCC puts a kprobe and a kretprobe on
the kill system call; this port uses the ``syscalls:sys_enter_kill`` and
``syscalls:sys_exit_kill`` tracepoints, which see the same arguments and
return value.

    pykex run tools/killsnoop.py                # every kill(2)
    pykex run tools/killsnoop.py -x             # only failed ones
    pykex run tools/killsnoop.py -p 181         # only those pid 181 sends
    pykex run tools/killsnoop.py -s 9           # only SIGKILL

Output (BCC's columns): ``TIME PID COMM SIG TPID RESULT``.
"""

import argparse

from pykex import (
    Bytes,
    HashMap,
    RingBuffer,
    Struct,
    TracepointContext,
    comm,
    current_pid,
    i32,
    pid_tgid,
    tracepoint,
    u8,
    u32,
    u64,
)


class Pending(Struct):
    tpid: i32
    sig: i32
    comm: Bytes[16]


class Event(Struct):
    pid: u32
    tpid: i32
    sig: i32
    ret: i32
    comm: Bytes[16]


pending = HashMap[u64, Pending](max_entries=10240)  # thread -> its kill() in flight
events = RingBuffer(size=1 << 16)

failed_only: u8 = 0
target_pid: u32 = 0
target_signal: u32 = 0


@tracepoint("syscalls/sys_enter_kill")
def enter_kill(ctx: TracepointContext) -> int:
    if target_pid != 0 and current_pid() != target_pid:
        return 0
    if target_signal != 0 and u32(ctx.sig) != target_signal:
        return 0
    pending[pid_tgid()] = Pending(tpid=i32(ctx.pid), sig=i32(ctx.sig), comm=comm())
    return 0


@tracepoint("syscalls/sys_exit_kill")
def exit_kill(ctx: TracepointContext) -> int:
    thread = pid_tgid()
    call = pending.get(thread)
    if call is None:
        return 0
    if failed_only == 0 or ctx.ret < 0:
        with events.reserve(Event) as event:
            event.pid = current_pid()
            event.tpid = call.tpid
            event.sig = call.sig
            event.ret = i32(ctx.ret)
            event.comm = call.comm
    del pending[thread]
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-x", "--failed", dest="failed_only", action="store_true",
                        help="only show failed kill syscalls")
    parser.add_argument("-p", "--pid", dest="target_pid", type=int,
                        help="trace this PID only which is the sender of signal")
    parser.add_argument("-s", "--signal", dest="target_signal", type=int,
                        help="trace this signal only")


def main(ext, args) -> None:
    import time

    from pykex.runtime.output import Column

    session = args.session
    table = session.table([Column("TIME", 9), Column("PID", 6), Column("COMM", 16),
                           Column("SIG", 4), Column("TPID", 6), Column("RESULT")])
    table.header()
    for event in session.events():
        table.row(time.strftime("%H:%M:%S"), event.pid, bytes(event.comm), event.sig, event.tpid,
                  event.ret, color="red" if event.ret < 0 else None)
