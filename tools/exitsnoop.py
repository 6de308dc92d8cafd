"""exitsnoop: trace process termination, with its age and exit status.

A port of BCC's tools/exitsnoop.py, which also uses the
``sched:sched_process_exit`` tracepoint; the exit code, parent and start
time come from the exiting task's ``task_struct`` (read through BTF).

    pykex run tools/exitsnoop.py                # every process exit
    pykex run tools/exitsnoop.py -x             # only non-zero exits and signals
    pykex run tools/exitsnoop.py -p 181         # only pid 181
    pykex run tools/exitsnoop.py --per-thread   # threads too, not only processes

Output (BCC's columns): ``[TIME-TZ] PCOMM PID PPID TID AGE(s) EXIT_CODE``.
"""

import argparse

from pykex import (
    Bytes,
    RingBuffer,
    Struct,
    TracepointContext,
    comm,
    current_task,
    i32,
    ktime_ns,
    tracepoint,
    u8,
    u32,
    u64,
)


class Event(Struct):
    start_time: u64
    exit_time: u64
    pid: u32
    tid: u32
    ppid: u32
    exit_code: i32
    comm: Bytes[16]


events = RingBuffer(size=1 << 16)

target_pid: u32 = 0
failed_only: u8 = 0
per_thread: u8 = 0


@tracepoint("sched/sched_process_exit")
def on_exit(ctx: TracepointContext) -> int:
    task = current_task()
    if per_thread == 0 and task.pid != task.tgid:
        return 0  # a thread that is not the process's last
    if target_pid != 0 and u32(task.tgid) != target_pid:
        return 0
    if failed_only != 0 and task.exit_code == 0:
        return 0
    with events.reserve(Event) as event:
        event.start_time = task.start_time
        event.exit_time = ktime_ns()
        event.pid = u32(task.tgid)
        event.tid = u32(task.pid)
        event.ppid = u32(task.real_parent.tgid)
        event.exit_code = i32(task.exit_code)
        event.comm = comm()
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--timestamp", action="store_true",
                        help="include timestamp (local time default)")
    parser.add_argument("--utc", action="store_true", help="include timestamp in UTC (-t implied)")
    parser.add_argument("-p", "--pid", dest="target_pid", type=int, help="trace this PID only")
    parser.add_argument("--label", help="label each line")
    parser.add_argument("-x", "--failed", dest="failed_only", action="store_true",
                        help="trace only fails, exclude exit(0)")
    parser.add_argument("--per-thread", dest="per_thread", action="store_true",
                        help="trace per thread termination")


def exit_status(code: int) -> str:
    """BCC's EXIT_CODE column: ``0``, ``code N``, or ``signal N (NAME)`` [``, core dumped``]."""
    import signal

    if code & 0x7F == 0:
        status = code >> 8
        return "0" if status == 0 else f"code {status}"
    number = code & 0x7F
    try:
        name = signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        name = "?"
    core = ", core dumped" if code & 0x80 else ""
    return f"signal {number} ({name}){core}"


def main(ext, args) -> None:
    import time

    from pykex.runtime.output import Column

    session = args.session
    stamped = args.timestamp or args.utc
    columns = []
    if stamped:
        columns.append(Column("TIME-" + ("UTC" if args.utc else time.strftime("%Z")), 13))
    if args.label:
        columns.append(Column("LABEL", len(args.label)))
    columns += [Column("PCOMM", 16), Column("PID", 7), Column("PPID", 7), Column("TID", 7),
                Column("AGE(s)", 7, spec="<7.2f", key="age"), Column("EXIT_CODE")]
    table = session.table(columns)
    table.header()
    for event in session.events():
        cells = []
        if stamped:
            now = time.gmtime() if args.utc else time.localtime()
            cells.append(time.strftime("%H:%M:%S", now) + f".{int(time.time() * 1000) % 1000:03}")
        if args.label:
            cells.append(args.label)
        age = (event.exit_time - event.start_time) / 1e9
        cells += [bytes(event.comm), event.pid, event.ppid, event.tid, age,
                  exit_status(event.exit_code)]
        table.row(*cells, color="red" if event.exit_code else None)
