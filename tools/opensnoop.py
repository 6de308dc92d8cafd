"""opensnoop: trace open() system calls, with the file name and the result.

A port of BCC's tools/opensnoop.py. BCC probes the open, openat and openat2
system calls with kprobes (or fentry); this port uses the
``syscalls:sys_enter_openat`` / ``syscalls:sys_exit_openat`` tracepoints
(and their ``open`` and ``openat2`` twins, which x86-64 C libraries rarely use).

    pykex run tools/opensnoop.py                # every open
    pykex run tools/opensnoop.py -T             # with a timestamp column
    pykex run tools/opensnoop.py -x             # only failed opens
    pykex run tools/opensnoop.py -p 181         # only pid 181
    pykex run tools/opensnoop.py -n main        # only processes whose name has "main"
    pykex run tools/opensnoop.py -e             # with the open flags

Output (BCC's columns): ``[TIME(s)] [UID] PID COMM FD ERR [FLAGS] PATH``.
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
    i64,
    ktime_ns,
    pid_tgid,
    tracepoint,
    u8,
    u32,
    u64,
    uid_gid,
)

NAME_MAX = 255


class Pending(Struct):
    flags: u32
    path: Bytes[NAME_MAX]


class Event(Struct):
    ts: u64
    pid: u32
    uid: u32
    ret: i32
    flags: u32
    comm: Bytes[16]
    path: Bytes[NAME_MAX]


pending = HashMap[u64, Pending](max_entries=10240)  # thread -> its open() in flight
events = RingBuffer(size=1 << 18)

target_pid: u32 = 0
target_tid: u32 = 0
ANY_UID = 0xFFFFFFFF
target_uid: u32 = ANY_UID
failed_only: u8 = 0
flag_filter: u32 = 0


def remember(ctx: TracepointContext, flags: u32) -> None:
    thread = pid_tgid()
    if target_pid != 0 and current_pid() != target_pid:
        return
    if target_tid != 0 and u32(thread & 0xFFFFFFFF) != target_tid:
        return
    if target_uid != ANY_UID and u32(uid_gid() & 0xFFFFFFFF) != target_uid:
        return
    if flag_filter != 0 and flags & flag_filter == 0:
        return
    call = pending.setdefault(thread, Pending())
    call.flags = flags
    call.path = ctx.filename  # copied now: the caller's memory is readable on entry


def report(ret: i64) -> None:
    thread = pid_tgid()
    call = pending.get(thread)
    if call is None:
        return
    if failed_only == 0 or ret < 0:
        with events.reserve(Event) as event:
            event.ts = ktime_ns()
            event.pid = current_pid()
            event.uid = u32(uid_gid() & 0xFFFFFFFF)
            event.ret = i32(ret)
            event.flags = call.flags
            event.comm = comm()
            event.path = call.path
    del pending[thread]


@tracepoint("syscalls/sys_enter_openat")
def enter_openat(ctx: TracepointContext) -> int:
    remember(ctx, u32(ctx.flags))
    return 0


@tracepoint("syscalls/sys_exit_openat")
def exit_openat(ctx: TracepointContext) -> int:
    report(ctx.ret)
    return 0


@tracepoint("syscalls/sys_enter_open")
def enter_open(ctx: TracepointContext) -> int:
    remember(ctx, u32(ctx.flags))
    return 0


@tracepoint("syscalls/sys_exit_open")
def exit_open(ctx: TracepointContext) -> int:
    report(ctx.ret)
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    import os

    class OrFlags(argparse.Action):
        """-f O_WRONLY -f O_CREAT: the union of the flags, for the flag_filter global."""

        def __call__(self, parser, namespace, value, option_string=None):
            flag = getattr(os, value.upper(), None)
            if not value.upper().startswith("O_") or not isinstance(flag, int):
                parser.error(f"unknown open flag {value!r}")
            setattr(namespace, self.dest, (getattr(namespace, self.dest) or 0) | flag)

    parser.add_argument("-T", "--timestamp", action="store_true",
                        help="include timestamp on output")
    parser.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
    parser.add_argument("-x", "--failed", dest="failed_only", action="store_true",
                        help="only show failed opens")
    parser.add_argument("-p", "--pid", dest="target_pid", type=int, help="trace this PID only")
    parser.add_argument("-t", "--tid", dest="target_tid", type=int, help="trace this TID only")
    parser.add_argument("-u", "--uid", dest="target_uid", type=int, help="trace this UID only")
    parser.add_argument("-d", "--duration", type=float, help="total duration of trace in seconds")
    parser.add_argument("-n", "--name", help="only print process names containing this name")
    parser.add_argument("-e", "--extended_fields", action="store_true",
                        help="show extended fields")
    parser.add_argument("-f", "--flag_filter", action=OrFlags,
                        help="filter on flags argument (e.g., O_WRONLY)")


def main(ext, args) -> None:
    from pykex.runtime.output import Column

    session = args.session
    columns = []
    if args.timestamp:
        columns.append(Column("TIME(s)", 14))
    if args.print_uid:
        columns.append(Column("UID", 6))
    columns += [Column("PID", 6), Column("COMM", 16), Column("FD", 4, ">"),
                Column("ERR", 3, ">")]
    if args.extended_fields:
        columns.append(Column("FLAGS", 8))
    columns.append(Column("PATH"))
    table = session.table(columns)
    table.header()
    first_ts = None
    for event in session.events():
        name = bytes(event.comm).split(b"\0", 1)[0].decode(errors="replace")
        if args.name and args.name not in name:
            continue
        first_ts = first_ts if first_ts is not None else event.ts
        fd, err = (event.ret, 0) if event.ret >= 0 else (-1, -event.ret)
        cells = []
        if args.timestamp:
            cells.append(f"{(event.ts - first_ts) / 1e9:<14.9f}")
        if args.print_uid:
            cells.append(event.uid)
        cells += [event.pid, name, fd, err]
        if args.extended_fields:
            cells.append(f"{event.flags:08o}")
        cells.append(bytes(event.path))
        table.row(*cells, color="red" if err else None)
