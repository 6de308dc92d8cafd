"""biolatency: block device I/O latency as a log2 histogram.

A port of BCC's tools/biolatency.py, which uses the ``block:block_rq_issue``
and ``block:block_rq_complete`` tracepoints (``block:block_rq_insert`` with
-Q) where they exist, as this port does. Requests are matched by
(device, sector), as BCC's tracepoint mode does.

    pykex run tools/biolatency.py               # histogram in usecs at Ctrl-C
    pykex run tools/biolatency.py -m 1 10       # in msecs, every second, 10 times
    pykex run tools/biolatency.py -D            # one histogram per disk
    pykex run tools/biolatency.py -Q            # include time queued in the OS
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

MAX_SLOTS = 64


class Request(Struct):
    dev: u32
    sector: u64


class DiskSlot(Struct):
    dev: u32
    slot: u32


started = HashMap[Request, u64](max_entries=10240)
dist = ArrayMap[u64](max_entries=MAX_SLOTS)  # histogram: log2 usecs
dist_per_disk = HashMap[DiskSlot, u64](max_entries=4096)

milliseconds: u8 = 0
per_disk: u8 = 0
queued: u8 = 0
target_dev: u32 = 0  # 0: every disk


def log2_slot(value: u64) -> u32:
    slot: u32 = 0
    while value != 0:
        value >>= 1
        slot += 1
    return slot


def start(dev: u32, sector: u64) -> None:
    if target_dev != 0 and dev != target_dev:
        return
    started[Request(dev=dev, sector=sector)] = ktime_ns()


@tracepoint("block/block_rq_insert")
def on_insert(ctx: TracepointContext) -> int:
    if queued != 0:
        start(u32(ctx.dev), u64(ctx.sector))
    return 0


@tracepoint("block/block_rq_issue")
def on_issue(ctx: TracepointContext) -> int:
    if queued == 0 or Request(dev=u32(ctx.dev), sector=u64(ctx.sector)) not in started:
        start(u32(ctx.dev), u64(ctx.sector))
    return 0


@tracepoint("block/block_rq_complete")
def on_complete(ctx: TracepointContext) -> int:
    request = Request(dev=u32(ctx.dev), sector=u64(ctx.sector))
    began = started.get(request)
    if began is None:
        return 0
    delta = ktime_ns() - began
    del started[request]
    if milliseconds != 0:
        delta //= 1000000
    else:
        delta //= 1000
    slot = log2_slot(delta)
    if slot >= MAX_SLOTS:
        slot = MAX_SLOTS - 1
    if per_disk != 0:
        key = DiskSlot(dev=request.dev, slot=slot)
        dist_per_disk[key] = dist_per_disk.setdefault(key, u64(0)) + 1
        return 0
    atomic_add(dist[slot], 1)
    return 0


def disk_name(dev: int) -> str:
    """The kernel's name of block device ``dev`` (its dev_t: major << 20 | minor)."""
    major, minor = dev >> 20, dev & 0xFFFFF
    try:
        with open(f"/sys/dev/block/{major}:{minor}/uevent") as uevent:
            for line in uevent:
                if line.startswith("DEVNAME="):
                    return line.strip().split("=", 1)[1]
    except OSError:
        pass
    return f"{major},{minor}"


def options(parser: argparse.ArgumentParser) -> None:
    def disk(text: str) -> int:
        import os

        try:
            number = os.stat(f"/dev/{text}").st_rdev
        except OSError:
            raise argparse.ArgumentTypeError(f"no disk named {text!r} in /dev") from None
        return os.major(number) << 20 | os.minor(number)

    parser.add_argument("-T", "--timestamp", action="store_true",
                        help="include timestamp on output")
    parser.add_argument("-Q", "--queued", action="store_true",
                        help="include OS queued time in I/O time")
    parser.add_argument("-m", "--milliseconds", action="store_true",
                        help="millisecond histogram")
    parser.add_argument("-D", "--disks", dest="per_disk", action="store_true",
                        help="print a histogram per disk device")
    parser.add_argument("-d", "--disk", dest="target_dev", type=disk,
                        help="trace this disk only")
    parser.add_argument("interval", nargs="?", type=float, help="output interval, in seconds")
    parser.add_argument("count", nargs="?", type=int, help="number of outputs")


def main(ext, args) -> None:
    from pykex.runtime.histogram import HistogramSections, Log2Histogram

    session = args.session
    unit = "msecs" if args.milliseconds else "usecs"
    session.note("Tracing block device I/O... Hit Ctrl-C to end.")
    for tick in session.ticks():
        if args.timestamp and not args.json:
            print(tick.stamp())
        if args.per_disk:
            sections = HistogramSections.from_map(ext.dist_per_disk, Log2Histogram,
                                                  val_type=unit, section_fn=disk_name)
            if args.json:
                print(sections.to_json(section_header="disk"), end="")
            else:
                sections.print(section_header="disk", section_format=str)
            ext.dist_per_disk.clear()
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
