"""execsnoop: trace new processes (execve), with their arguments and result.

A port of BCC's tools/execsnoop.py. BCC puts a kprobe and a kretprobe on the
execve system call; this port uses the ``syscalls:sys_enter_execve`` and
``syscalls:sys_exit_execve`` tracepoints. As in BCC, each argument is sent
as its own event when execve() is entered and the result when it returns,
so arguments are read before the new program replaces them.

    pykex run tools/execsnoop.py                # every exec
    pykex run tools/execsnoop.py -x             # failed ones too
    pykex run tools/execsnoop.py -T -U          # with time and UID columns
    pykex run tools/execsnoop.py -n main        # only commands containing "main"
    pykex run tools/execsnoop.py -P 181         # only children of pid 181

Output (BCC's columns): ``[TIME] [TIME(s)] [UID] PCOMM PID PPID RET ARGS``.
"""

import argparse

from pykex import (
    Bytes,
    RingBuffer,
    Struct,
    TracepointContext,
    comm,
    current_pid,
    current_task,
    i32,
    tracepoint,
    u32,
    u64,
    uid_gid,
    user_read,
    user_string,
)

ARG_SIZE = 128
EVENT_ARG = 0
EVENT_RET = 1


class Event(Struct):
    pid: u32
    ppid: u32
    uid: u32
    kind: u32  # EVENT_ARG or EVENT_RET
    ret: i32
    comm: Bytes[16]
    arg: Bytes[ARG_SIZE]


events = RingBuffer(size=1 << 20)

max_args: u32 = 20
target_uid: u32 = 0xFFFFFFFF
target_ppid: u32 = 0


def wanted() -> bool:
    if target_uid != 0xFFFFFFFF and u32(uid_gid() & 0xFFFFFFFF) != target_uid:
        return False
    return target_ppid == 0 or u32(current_task().real_parent.tgid) == target_ppid


def send(kind: u32, ret: i32, address: u64) -> None:
    with events.reserve(Event) as event:
        event.pid = current_pid()
        event.ppid = u32(current_task().real_parent.tgid)
        event.uid = u32(uid_gid() & 0xFFFFFFFF)
        event.kind = kind
        event.ret = ret
        event.comm = comm()
        if address != 0:
            event.arg = user_string(address)


@tracepoint("syscalls/sys_enter_execve")
def enter_execve(ctx: TracepointContext) -> int:
    if not wanted():
        return 0
    send(EVENT_ARG, 0, u64(ctx.filename))
    for i in range(1, max_args):
        address = user_read(u64(ctx.argv) + 8 * u64(i), u64)
        if address == 0:
            break
        send(EVENT_ARG, 0, address)
    return 0


@tracepoint("syscalls/sys_exit_execve")
def exit_execve(ctx: TracepointContext) -> int:
    if wanted():
        send(EVENT_RET, i32(ctx.ret), 0)
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-T", "--time", action="store_true", help="include time column on output "
                        "(HH:MM:SS)")
    parser.add_argument("-t", "--timestamp", action="store_true",
                        help="include timestamp on output")
    parser.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
    parser.add_argument("-u", "--uid", dest="target_uid", type=int, help="trace this UID only")
    parser.add_argument("-q", "--quote", action="store_true",
                        help='Add quotemarks (") around arguments.')
    parser.add_argument("-n", "--name", help="only print commands matching this name, any arg")
    parser.add_argument("-l", "--line", help="only print commands where arg contains this line")
    parser.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
    parser.add_argument("--max-args", dest="max_args", type=int, default=20,
                        help="maximum number of arguments parsed and displayed, defaults to 20")
    parser.add_argument("-P", "--ppid", dest="target_ppid", type=int,
                        help="trace this parent PID only")


def main(ext, args) -> None:
    import time

    from pykex.runtime.output import Column

    session = args.session
    columns = []
    if args.time:
        columns.append(Column("TIME", 8))
    if args.timestamp:
        columns.append(Column("TIME(s)", 8))
    if args.print_uid:
        columns.append(Column("UID", 6))
    columns += [Column("PCOMM", 16), Column("PID", 7), Column("PPID", 7), Column("RET", 3),
                Column("ARGS")]
    table = session.table(columns)
    table.header()
    started = time.monotonic()
    argv: dict[int, list[str]] = {}
    for event in session.events():
        if event.kind == EVENT_ARG:
            argv.setdefault(event.pid, []).append(
                bytes(event.arg).split(b"\0", 1)[0].decode(errors="replace"))
            continue
        words = argv.pop(event.pid, [])
        if event.ret != 0 and not args.fails:
            continue
        name = bytes(event.comm).split(b"\0", 1)[0].decode(errors="replace")
        if args.name and not any(args.name in w for w in [name, *words]):
            continue
        if args.line and not any(args.line in w for w in words):
            continue
        shown = " ".join(f'"{w}"' if args.quote else w for w in words)
        cells = []
        if args.time:
            cells.append(time.strftime("%H:%M:%S"))
        if args.timestamp:
            cells.append(f"{time.monotonic() - started:<8.3f}")
        if args.print_uid:
            cells.append(event.uid)
        cells += [name, event.pid, event.ppid, event.ret, shown]
        table.row(*cells, color="red" if event.ret else None)
