"""profile: sample stack traces on every CPU at a fixed frequency, count them.

A port of BCC's tools/profile.py, which also samples with a perf event
(software cpu-clock) and records kernel and user stacks in a stack trace map.

    pykex run tools/profile.py                  # 49 Hz, all CPUs, until Ctrl-C
    pykex run tools/profile.py -F 99 5          # 99 Hz for 5 seconds
    pykex run tools/profile.py -p 181 -U        # user stacks of pid 181 only
    pykex run tools/profile.py -f               # folded output for flame graphs

Output (BCC's layout): per stack, kernel frames, ``--``, user frames, then
``-                COMM (PID)`` and the sample count; with ``-f`` one line
``COMM;user;frames;-;kernel;frames COUNT``.
"""

import argparse

from pykex import (
    Bytes,
    HashMap,
    PerfEventContext,
    StackTrace,
    Struct,
    comm,
    current_pid,
    i64,
    perf_event,
    pid_tgid,
    u8,
    u32,
    u64,
)


class StackKey(Struct):
    pid: u32
    user_stack: i64  # a stack id, or a negative errno when none was taken
    kernel_stack: i64
    comm: Bytes[16]


counts = HashMap[StackKey, u64](max_entries=10240)
stacks = StackTrace(max_entries=16384)

target_pid: u32 = 0
target_tid: u32 = 0
user_only: u8 = 0
kernel_only: u8 = 0
include_idle: u8 = 0


@perf_event()
def on_sample(ctx: PerfEventContext) -> int:
    thread = pid_tgid()
    if include_idle == 0 and thread == 0:
        return 0
    if target_pid != 0 and current_pid() != target_pid:
        return 0
    if target_tid != 0 and u32(thread & 0xFFFFFFFF) != target_tid:
        return 0
    key = StackKey(pid=current_pid(), user_stack=-1, kernel_stack=-1, comm=comm())
    if kernel_only == 0:
        key.user_stack = ctx.get_stackid(stacks, user=True)
    if user_only == 0:
        key.kernel_stack = ctx.get_stackid(stacks)
    counts[key] = counts.setdefault(key, u64(0)) + 1
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--pid", dest="target_pid", type=int,
                        help="profile process with this PID only")
    parser.add_argument("-L", "--tid", dest="target_tid", type=int,
                        help="profile thread with this TID only")
    stack = parser.add_mutually_exclusive_group()
    stack.add_argument("-U", "--user-stacks-only", dest="user_only", action="store_true",
                       help="show stacks from user space only (no kernel space stacks)")
    stack.add_argument("-K", "--kernel-stacks-only", dest="kernel_only", action="store_true",
                       help="show stacks from kernel space only (no user space stacks)")
    parser.add_argument("-F", "--frequency", type=int, default=49,
                        help="sample frequency, Hertz")
    parser.add_argument("-d", "--delimited", action="store_true",
                        help="insert delimiter between kernel/user stacks")
    parser.add_argument("-a", "--annotations", action="store_true",
                        help="add _[k] annotations to kernel frames")
    parser.add_argument("-I", "--include-idle", dest="include_idle", action="store_true",
                        help="include CPU idle stacks")
    parser.add_argument("-f", "--folded", action="store_true",
                        help="output folded format, one line per stack (for flame graphs)")
    parser.add_argument("seconds", nargs="?", type=float, metavar="duration",
                        help="duration of trace, in seconds")


def main(ext, args) -> None:
    import json

    from pykex.runtime.ksyms import kernel_symbols
    from pykex.runtime.usyms import sym

    session = args.session
    if args.seconds is not None:
        session.stop_after(args.seconds)
    session.note(f"Sampling at {args.frequency} Hertz of all threads by user + kernel stack"
                 "... Hit Ctrl-C to end.")
    for _ in session.ticks():
        break
    kernel = kernel_symbols()
    entries = sorted(ext.counts.items(), key=lambda item: item[1])
    for key, count in entries:
        user = [] if key.user_stack < 0 else ext.stacks[key.user_stack]
        kern = [] if key.kernel_stack < 0 else ext.stacks[key.kernel_stack]
        user_names = [sym(address, key.pid) for address in user]
        kernel_names = [kernel.ksym(address) + ("_[k]" if args.annotations else "")
                        for address in kern]
        name = bytes(key.comm).split(b"\0", 1)[0].decode(errors="replace")
        if args.json:
            print(json.dumps({"comm": name, "pid": key.pid, "count": count,
                              "kernel": kernel_names, "user": user_names}))
        elif args.folded:
            frames = [*reversed(user_names), *(["-"] if args.delimited else []),
                      *reversed(kernel_names)]
            print(";".join([name, *frames]), count)
        else:
            for frame in kernel_names:
                print(f"    {frame}")
            if args.delimited and kernel_names and user_names:
                print("    --")
            for frame in user_names:
                print(f"    {frame}")
            print(f"    -                {name} ({key.pid})")
            print(f"        {count}\n")
