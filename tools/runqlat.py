"""runqlat: how long tasks wait on a CPU's run queue, as a log2 histogram.

A port of BCC's tools/runqlat.py. BCC attaches to the ``sched_wakeup``,
``sched_wakeup_new`` and ``sched_switch`` raw tracepoints (or kprobes on
``ttwu_do_wakeup``/``wake_up_new_task``/``finish_task_switch``); this port
uses the ``sched:sched_wakeup``, ``sched:sched_wakeup_new`` and
``sched:sched_switch`` tracepoints, whose records carry the thread ids.

    pykex run tools/runqlat.py                  # histogram in usecs at Ctrl-C
    pykex run tools/runqlat.py -m 5 3           # in msecs, every 5 s, 3 times
    pykex run tools/runqlat.py -P               # one histogram per thread
    pykex run tools/runqlat.py -p 185           # only thread 185

``-p`` matches the thread id the tracepoints report (for a single-threaded
process, its pid).
"""

import argparse

from pykex import (
    ArrayMap,
    HashMap,
    Struct,
    TracepointContext,
    atomic_add,
    ktime_ns,
    tracepoint,
    u8,
    u32,
    u64,
)

TASK_RUNNING = 0
MAX_SLOTS = 64


class ThreadSlot(Struct):
    tid: u32
    slot: u32


# Thread id -> when it was enqueued (woken, or preempted while runnable).
enqueued = HashMap[u32, u64](max_entries=10240)
dist = ArrayMap[u64](max_entries=MAX_SLOTS)  # histogram: log2 usecs
dist_per_thread = HashMap[ThreadSlot, u64](max_entries=10240)

target_tid: u32 = 0
milliseconds: u8 = 0
per_thread: u8 = 0


def log2_slot(value: u64) -> u32:
    slot: u32 = 0
    while value != 0:
        value >>= 1
        slot += 1
    return slot


def enqueue(tid: u32) -> None:
    if tid == 0 or (target_tid != 0 and tid != target_tid):
        return
    enqueued[tid] = ktime_ns()


@tracepoint("sched/sched_wakeup")
def on_wakeup(ctx: TracepointContext) -> int:
    enqueue(u32(ctx.pid))
    return 0


@tracepoint("sched/sched_wakeup_new")
def on_wakeup_new(ctx: TracepointContext) -> int:
    enqueue(u32(ctx.pid))
    return 0


@tracepoint("sched/sched_switch")
def on_switch(ctx: TracepointContext) -> int:
    if ctx.prev_state == TASK_RUNNING:  # preempted: back on the queue at once
        enqueue(u32(ctx.prev_pid))
    tid = u32(ctx.next_pid)
    began = enqueued.get(tid)
    if began is None:
        return 0
    delta = ktime_ns() - began
    del enqueued[tid]
    if milliseconds != 0:
        delta //= 1000000
    else:
        delta //= 1000
    slot = log2_slot(delta)
    if slot >= MAX_SLOTS:
        slot = MAX_SLOTS - 1
    if per_thread != 0:
        count = dist_per_thread.setdefault(ThreadSlot(tid=tid, slot=slot), u64(0))
        dist_per_thread[ThreadSlot(tid=tid, slot=slot)] = count + 1
        return 0
    atomic_add(dist[slot], 1)
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-T", "--timestamp", action="store_true",
                        help="include timestamp on output")
    parser.add_argument("-m", "--milliseconds", action="store_true",
                        help="millisecond histogram")
    parser.add_argument("-P", "--pids", dest="per_thread", action="store_true",
                        help="print a histogram per thread ID")
    parser.add_argument("-p", "--pid", dest="target_tid", type=int, help="trace this PID only")
    parser.add_argument("interval", nargs="?", type=float, help="output interval, in seconds")
    parser.add_argument("count", nargs="?", type=int, help="number of outputs")


def main(ext, args) -> None:
    from pykex.runtime.histogram import HistogramSections, Log2Histogram

    session = args.session
    unit = "msecs" if args.milliseconds else "usecs"
    session.note("Tracing run queue latency... Hit Ctrl-C to end.")
    for tick in session.ticks():
        if args.timestamp and not args.json:
            print(tick.stamp())
        if args.per_thread:
            sections = HistogramSections.from_map(ext.dist_per_thread, Log2Histogram,
                                                  val_type=unit)
            if args.json:
                print(sections.to_json(section_header="pid"), end="")
            else:
                sections.print(section_header="pid")
            ext.dist_per_thread.clear()
        else:
            hist = Log2Histogram.from_map(ext.dist, val_type=unit)
            if args.json:
                print(hist.to_json())
            else:
                print()
                hist.print()
            for slot in range(MAX_SLOTS):
                ext.dist[slot] = 0
        if tick.last:
            break
