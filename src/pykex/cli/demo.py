"""``pykex demo``: a Python XDP firewall compiled, loaded and attached to real traffic.

The extension is ``examples/firewall.py``, an ordinary Python module. The
demo compiles it to eBPF, loads it through pykex's own bpf(2) layer, attaches
it to one end of a veth pair whose other end lives in a private network
namespace, and sends real pings and UDP datagrams from inside that
namespace. It then blocks the sender's address from Python, shows the pings
being dropped, and feeds the program a truncated packet to show an exception
coming back as a Python traceback. Last, the BCC-style tool
``tools/opensnoop.py`` watches a command the demo runs open a file.
Everything created is removed on the way out, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pykex.compiler import Compilation
from pykex.kernel.maps import sum_per_cpu
from pykex.net import build_udp_ipv4, ipv4_int
from pykex.runtime import Extension, load
from pykex.runtime.runner import run_tool
from pykex.testing import NetworkSetupError, VethNamespace, namespaces

HELP = "compile an XDP firewall written in Python and run it on a private veth pair"

DEMO_PREFIX = "pkxdemo"  # of the namespace and veth names
UDP_PORT = 9  # discard: nothing listens, the datagrams only need to arrive
UDP_PAYLOAD = b"counted by pykex"
REPOSITORY = Path(__file__).resolve().parents[3]
EXTENSION = REPOSITORY / "examples" / "firewall.py"
OPENSNOOP = REPOSITORY / "tools" / "opensnoop.py"
STEPS = 7

IP_PROTOCOLS = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 58: "ICMPv6", 132: "SCTP"}


@dataclass(frozen=True)
class Count:
    key: int
    packets: int
    bytes: int

    @property
    def protocol(self) -> str:
        return IP_PROTOCOLS.get(self.key, f"IP protocol {self.key}")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pings", type=_count, default=10, help="ICMP echo requests to send")
    parser.add_argument("--datagrams", type=_count, default=20, help="UDP datagrams to send")
    parser.add_argument(
        "--extension", type=Path, default=EXTENSION, help="the firewall extension to run"
    )


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    step = _Steps(STEPS)
    print("pykex demo: an XDP firewall written in Python, at work on real traffic\n")
    with ExitStack() as cleanup:
        step(f"Compiling {_shown(args.extension)}")
        compilation = Compilation(_shown(args.extension))
        for stats in compilation.stats:
            print(
                f"      program {stats.program!r} ({stats.kind}): {stats.instructions} "
                f"eBPF instructions, {stats.frame_bytes} bytes of locals in its frame map"
            )
        user_maps = [m.name for m in compilation.ir.maps]
        print(f"      maps: {', '.join(user_maps)}")

        step("Loading maps and program into the kernel")
        ext = cleanup.enter_context(load(compilation))
        info = ext.firewall.program.info()
        print(
            f"      verifier: {info.verified_insns} instructions verified; "
            f"{info.xlated_size} bytes after rewrites, {info.jited_size} bytes of native code"
        )

        step("Creating a network namespace joined by a veth pair")
        cleanup.callback(print, "      removed the veth pair and the namespace")
        network = cleanup.enter_context(VethNamespace(prefix=DEMO_PREFIX))
        print(
            f"      {network.host_ifname} {network.host_address} (here)  <->  "
            f"{network.peer_ifname} {network.peer_address} (namespace {network.namespace})"
        )

        step(f"Attaching the firewall to {network.host_ifname}")
        cleanup.callback(print, "      detached the program")
        link = cleanup.enter_context(ext.firewall.attach_xdp(network.host_ifname))
        print(f"      XDP link {link.id}; every frame arriving here goes through the firewall")

        step("Sending traffic from inside the namespace")
        replies = network.ping(args.pings) if args.pings else 0
        print(f"      {args.pings} pings sent, {replies} answered")
        network.send_udp(args.datagrams, UDP_PORT, UDP_PAYLOAD)
        print(f"      {args.datagrams} UDP datagrams sent to port {UDP_PORT}")
        print("\nWhat the program counted:\n")
        print(format_counts(read_counts(ext)))

        step(f"Blocking {network.peer_address} from Python")
        ext.blocked[ipv4_int(network.peer_address)] = 1
        print(f"      ext.blocked[{network.peer_address}] = 1")
        blocked_replies = network.ping(args.pings) if args.pings else 0
        print(f"      {args.pings} more pings sent, {blocked_replies} answered: dropped by XDP")
        _show_exception(ext, network)

        step(f"Watching a command open a file with {_shown(OPENSNOOP)}")
        _show_opensnoop()
        print("\nCleaning up")
    if network.namespace in namespaces():
        raise NetworkSetupError(f"namespace {network.namespace} is still there after cleanup")
    print(f"\nDone in {time.monotonic() - started:.1f} s; nothing is left behind.")
    return 0


def _show_exception(ext: Extension, network: VethNamespace) -> None:
    """Run the program on a frame cut inside its IPv4 header: the bounds-checked
    read raises IndexError, the program passes the frame (``on_error``) and the
    report comes back as a traceback."""
    frame = build_udp_ipv4(
        b"x", dport=UDP_PORT, saddr=network.peer_address, daddr=network.host_address
    )
    result = ext.firewall.test_run(frame[:20])
    print(f"\n      A frame cut to 20 bytes gets verdict {result.retval} (XDP_PASS, the on_error")
    print("      verdict) and this report on the extension's error channel:\n")
    for report in result.exceptions:
        print("\n".join(f"        {line}" for line in str(report).splitlines()))


def _show_opensnoop() -> None:
    """Run opensnoop, filtered to ``cat``, while ``cat`` reads a file the demo wrote."""
    with tempfile.NamedTemporaryFile("w", prefix="pykex-demo-", suffix=".txt") as note:
        note.write("opened while opensnoop watched\n")
        note.flush()

        def read_the_note(_runner: object) -> None:
            env = dict(os.environ, LC_ALL="C")  # no locale files: fewer lines to show
            subprocess.run(["cat", note.name], stdout=subprocess.DEVNULL, env=env, check=True)

        print(f"      pykex run {_shown(OPENSNOOP)} -n cat --duration 1")
        print(f"      while the demo runs: cat {note.name}")
        shown = io.StringIO()
        run_tool(OPENSNOOP, ["-n", "cat", "--duration", "1"], out=shown,
                 on_attached=read_the_note)  # fmt: skip
    print()
    for line in shown.getvalue().splitlines():
        if line.strip():
            print(f"        {line}")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _Steps:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def __call__(self, text: str) -> None:
        self.done += 1
        print(f"[{self.done}/{self.total}] {text}", flush=True)


def read_counts(ext: Any) -> list[Count]:
    """Every protocol the firewall counted, summed over CPUs, most packets first."""
    found = []
    for protocol, per_cpu in ext.stats.items():
        total = sum_per_cpu(per_cpu)
        if total.packets:
            found.append(Count(protocol, total.packets, total.bytes))
    return sorted(found, key=lambda c: (-c.packets, c.key))


def format_counts(counts: list[Count]) -> str:
    if not counts:
        return "  (no packets)"
    rows = [("Protocol", "Packets", "Bytes")]
    rows += [(c.protocol, str(c.packets), str(c.bytes)) for c in counts]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {packets:>8}  {size:>8}" for name, packets, size in rows)
