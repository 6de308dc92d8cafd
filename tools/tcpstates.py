"""tcpstates: trace TCP state changes, with the time spent in each state.

A port of BCC's tools/tcpstates.py, which also uses the
``sock:inet_sock_set_state`` tracepoint. C-PID and C-COMM are the task on
CPU when the state changed, which for changes in softirq context is not
the socket's owner (as in BCC).

    pykex run tools/tcpstates.py                # every TCP state change
    pykex run tools/tcpstates.py -T -w          # with time, wide addresses
    pykex run tools/tcpstates.py -L 80 -D 4242  # local port 80 or remote 4242
    pykex run tools/tcpstates.py -4             # IPv4 only

Output (BCC's columns): ``[TIME] [TIME(s)] SKADDR C-PID C-COMM [IP] LADDR LPORT
RADDR RPORT OLDSTATE -> NEWSTATE MS``.
"""

import argparse

from pykex import (
    Array,
    Bytes,
    HashMap,
    RingBuffer,
    Struct,
    TracepointContext,
    comm,
    current_pid,
    ktime_ns,
    tracepoint,
    u8,
    u16,
    u32,
    u64,
)

AF_INET = 2
AF_INET6 = 10
IPPROTO_TCP = 6
TCP_CLOSE = 7


class Event(Struct):
    skaddr: u64
    ts: u64
    span_us: u64
    pid: u32
    oldstate: u32
    newstate: u32
    family: u16
    sport: u16
    dport: u16
    saddr4: Array[u8, 4]
    daddr4: Array[u8, 4]
    saddr6: Array[u8, 16]
    daddr6: Array[u8, 16]
    comm: Bytes[16]


last_change = HashMap[u64, u64](max_entries=10240)  # socket -> time of its last change
events = RingBuffer(size=1 << 18)

family_filter: u16 = 0
local_port: u16 = 0
remote_port: u16 = 0


@tracepoint("sock/inet_sock_set_state")
def on_state(ctx: TracepointContext) -> int:
    if ctx.protocol != IPPROTO_TCP:
        return 0
    if family_filter != 0 and ctx.family != family_filter:
        return 0
    if local_port != 0 and ctx.sport != local_port:
        return 0
    if remote_port != 0 and ctx.dport != remote_port:
        return 0
    socket = u64(ctx.skaddr)
    now = ktime_ns()
    span: u64 = 0
    if (before := last_change.get(socket)) is not None:
        span = (now - before) // 1000
    with events.reserve(Event) as event:
        event.skaddr = socket
        event.ts = now
        event.span_us = span
        event.pid = current_pid()
        event.oldstate = u32(ctx.oldstate)
        event.newstate = u32(ctx.newstate)
        event.family = ctx.family
        event.sport = ctx.sport
        event.dport = ctx.dport
        event.saddr4 = ctx.saddr
        event.daddr4 = ctx.daddr
        event.saddr6 = ctx.saddr_v6
        event.daddr6 = ctx.daddr_v6
        event.comm = comm()
    if ctx.newstate == TCP_CLOSE:
        if socket in last_change:
            del last_change[socket]
    else:
        last_change[socket] = now
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-T", "--time", action="store_true",
                        help="include time column on output (HH:MM:SS)")
    parser.add_argument("-t", "--timestamp", action="store_true",
                        help="include timestamp on output (seconds)")
    parser.add_argument("-w", "--wide", action="store_true", help="wide column output (fits IPv6 "
                        "addresses)")
    parser.add_argument("-s", "--csv", action="store_true", help="comma separated values output")
    parser.add_argument("-L", "--localport", dest="local_port", type=int,
                        help="local port to trace")
    parser.add_argument("-D", "--remoteport", dest="remote_port", type=int,
                        help="remote port to trace")
    family = parser.add_mutually_exclusive_group()
    family.add_argument("-4", "--ipv4", dest="family_filter", action="store_const", const=2,
                        help="trace IPv4 family only")
    family.add_argument("-6", "--ipv6", dest="family_filter", action="store_const", const=10,
                        help="trace IPv6 family only")


STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
          6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
          11: "CLOSING", 12: "NEW_SYN_RECV"}


def main(ext, args) -> None:
    import ipaddress
    import time

    from pykex.runtime.output import Column

    session = args.session
    width = 39 if args.wide else 15
    columns = []
    if args.time:
        columns.append(Column("TIME", 8))
    if args.timestamp:
        columns.append(Column("TIME(s)", 9))
    columns += [Column("SKADDR", 16), Column("C-PID", 5), Column("C-COMM", 10, truncate=True)]
    if args.wide or args.csv:
        columns.append(Column("IP", 2))
    columns += [Column("LADDR", width), Column("LPORT", 5), Column("RADDR", width),
                Column("RPORT", 5), Column("OLDSTATE", 11), Column("->", 2),
                Column("NEWSTATE", 11), Column("MS", spec=".3f")]
    table = session.table(columns)
    if not args.csv:
        table.header()
    started = None
    for event in session.events():
        v4 = event.family == 2
        local = ipaddress.ip_address(bytes(event.saddr4 if v4 else event.saddr6))
        remote = ipaddress.ip_address(bytes(event.daddr4 if v4 else event.daddr6))
        started = started if started is not None else event.ts
        cells = []
        if args.time:
            cells.append(time.strftime("%H:%M:%S"))
        if args.timestamp:
            cells.append(f"{(event.ts - started) / 1e9:.6f}")
        cells += [f"{event.skaddr:x}", event.pid, bytes(event.comm)]
        if args.wide or args.csv:
            cells.append(4 if v4 else 6)
        cells += [str(local), event.sport, str(remote), event.dport,
                  STATES.get(event.oldstate, str(event.oldstate)), "->",
                  STATES.get(event.newstate, str(event.newstate)), event.span_us / 1000]
        if args.csv:
            print(",".join(str(c) for c in cells if c != "->"))
        else:
            table.row(*cells)
