"""syscount: count system calls, per call or per process, with their latency.

A port of BCC's tools/syscount.py. Like the original it counts on the
``raw_syscalls:sys_enter`` / ``raw_syscalls:sys_exit`` tracepoints, so nothing
had to be replaced.

    pykex run tools/syscount.py                 # top 10 system calls until Ctrl-C
    pykex run tools/syscount.py -L -i 1         # with latency, every second
    pykex run tools/syscount.py -P -p 181       # per process, only pid 181
    pykex run tools/syscount.py -x              # failed calls only

Output (BCC's columns): ``SYSCALL COUNT [TIME (us)]``, or with ``-P``
``PID COMM COUNT [TIME (us)]``.
"""

import argparse
import time

from pykex import (
    HashMap,
    Struct,
    TracepointContext,
    atomic_add,
    current_pid,
    i64,
    ktime_ns,
    pid_tgid,
    tracepoint,
    u8,
    u32,
    u64,
)


class Totals(Struct):
    count: u64
    total_ns: u64


# Key: the system call number, or with -P the process id.
counts = HashMap[u32, Totals](max_entries=10240)
# Thread (pid_tgid) -> when its current system call began.
started = HashMap[u64, u64](max_entries=10240)

# Set from the command line before the programs are attached.
target_pid: u32 = 0
failures_only: u8 = 0
errno_filter: u32 = 0  # 0: any
per_process: u8 = 0


@tracepoint("raw_syscalls/sys_enter")
def sys_enter(ctx: TracepointContext) -> int:
    if target_pid != 0 and current_pid() != target_pid:
        return 0
    started[pid_tgid()] = ktime_ns()
    return 0


@tracepoint("raw_syscalls/sys_exit")
def sys_exit(ctx: TracepointContext) -> int:
    thread = pid_tgid()
    began = started.get(thread)
    if began is None:
        return 0
    elapsed = ktime_ns() - began
    del started[thread]
    if failures_only != 0 and ctx.ret >= 0:
        return 0
    if errno_filter != 0 and ctx.ret != -i64(errno_filter):
        return 0
    key = u32(ctx.id)
    if per_process != 0:
        key = current_pid()
    totals = counts.setdefault(key, Totals())
    atomic_add(totals.count, 1)
    atomic_add(totals.total_ns, elapsed)
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    import errno

    def errno_value(text: str) -> int:
        if text.isdigit():
            return int(text)
        value = getattr(errno, text.upper(), None)
        if value is None:
            raise argparse.ArgumentTypeError(f"unknown errno {text!r}")
        return value

    parser.add_argument("-p", "--pid", dest="target_pid", type=int, help="trace only this pid")
    parser.add_argument("-i", "--interval", type=float, help="print summary at this interval "
                        "(seconds)")
    parser.add_argument("-d", "--duration", type=float, help="total duration of trace, seconds")
    parser.add_argument("-T", "--top", type=int, default=10,
                        help="print only the top syscalls by count or latency")
    parser.add_argument("-x", "--failures", dest="failures_only", action="store_true",
                        help="trace only failed syscalls (return < 0)")
    parser.add_argument("-e", "--errno", dest="errno_filter", type=errno_value,
                        help="trace only syscalls that return this error (numeric or EPERM, etc.)")
    parser.add_argument("-L", "--latency", action="store_true",
                        help="collect syscall latency")
    parser.add_argument("-m", "--milliseconds", action="store_true",
                        help="display latency in milliseconds (default: microseconds)")
    parser.add_argument("-P", "--process", dest="per_process", action="store_true",
                        help="count by process and not by syscall")
    parser.add_argument("-l", "--list", action="store_true",
                        help="print list of recognized syscalls and exit")


def syscall_names() -> dict[int, str]:
    """x86-64 system call numbers to names, from the kernel's uapi header."""
    import re

    names = {}
    try:
        with open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") as header:
            for match in re.finditer(r"#define __NR_(\w+) (\d+)", header.read()):
                names[int(match.group(2))] = match.group(1)
    except OSError:
        pass
    return names


def main(ext, args) -> None:
    from pykex.runtime.output import Column

    session = args.session
    names = syscall_names()
    if args.list:
        for number in sorted(names):
            print(names[number])
        return
    unit, divisor = ("ms", 1_000_000) if args.milliseconds else ("us", 1_000)
    first = [Column("PID", 6), Column("COMM", 16)] if args.per_process else [Column("SYSCALL", 22)]
    columns = [*first, Column("COUNT", 8, ">")]
    if args.latency:
        columns.append(Column(f"TIME ({unit})", 16, ">", spec=".3f", key="time"))
    table = session.table(columns)
    failed = "failed " if args.failures_only else ""
    session.note(f"Tracing {failed}syscalls, printing top {args.top}... Ctrl+C to quit.")

    def comm_of(pid: int) -> str:
        try:
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip()
        except OSError:
            return "[unknown]"

    for tick in session.ticks():
        entries = [(key, totals) for key, totals in ext.counts.items()]
        entries.sort(key=lambda item: -(item[1].total_ns if args.latency else item[1].count))
        if not args.json:
            print(f"\n[{time.strftime('%H:%M:%S')}]")
            table.header()
        for key, totals in entries[: args.top]:
            first_cells = ((key, comm_of(key)) if args.per_process
                           else (names.get(key, f"[unknown: {key}]"),))
            cells = [*first_cells, totals.count]
            if args.latency:
                cells.append(totals.total_ns / divisor)
            table.row(*cells)
        ext.counts.clear()
        if tick.last:
            break
