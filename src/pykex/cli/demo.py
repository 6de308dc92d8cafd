"""``pykex demo``: count real packets per protocol with an XDP program, then clean up.

The program is assembled by hand (the Python front end compiles to the same
kind of code), loaded through pykex's own bpf(2) layer, attached to one end of
a veth pair whose other end lives in a private network namespace, and fed
real pings and UDP datagrams from inside that namespace. Everything created
is removed on the way out, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from dataclasses import dataclass

from pykex.bpf import RelocationKind, assemble, encode
from pykex.kernel import MapRelocation, Program, ProgType
from pykex.kernel.link import attach_xdp
from pykex.kernel.maps import PerCpuHashMap, sum_per_cpu
from pykex.layout import Struct, u32, u64
from pykex.testing import NetworkSetupError, VethNamespace, namespaces

HELP = "count packets per protocol with an XDP program on a private veth pair"

DEMO_PREFIX = "pkxdemo"  # of the namespace and veth names
MAP_NAME = "counts"
MAX_PROTOCOLS = 256
UDP_PORT = 9  # discard: nothing listens, the datagrams only need to arrive
UDP_PAYLOAD = b"counted by pykex"
# Keys at or above this are frames that are not IPv4: 0x10000 | EtherType.
NON_IP = 0x10000

# Per-CPU hash: key = IPv4 protocol number (or NON_IP | EtherType),
# value = {u64 packets; u64 bytes} for the CPU that saw the frame.
COUNT_PER_PROTOCOL = f"""
    r6 = r1
    r2 = *(u32 *)(r6 +0)          ; data
    r3 = *(u32 *)(r6 +4)          ; data_end
    r7 = r3
    r7 -= r2                      ; frame length in bytes
    r4 = r2
    r4 += 14
    if r4 > r3 goto pass          ; shorter than an Ethernet header
    r5 = *(u16 *)(r2 +12)
    r5 = be16 r5                  ; EtherType
    if r5 == 0x800 goto ipv4
    r5 |= {NON_IP:#x}
    goto count
ipv4:
    r4 = r2
    r4 += 34
    if r4 > r3 goto pass          ; shorter than Ethernet + IPv4 headers
    r5 = *(u8 *)(r2 +23)          ; IPv4 protocol
count:
    *(u32 *)(r10 -4) = r5
    r1 = map[{MAP_NAME}] ll
    r2 = r10
    r2 += -4
    call bpf_map_lookup_elem
    if r0 == 0 goto first
    r1 = *(u64 *)(r0 +0)          ; this CPU's slot: no other CPU writes it
    r1 += 1
    *(u64 *)(r0 +0) = r1
    r1 = *(u64 *)(r0 +8)
    r1 += r7
    *(u64 *)(r0 +8) = r1
    goto pass
first:
    *(u64 *)(r10 -24) = 1
    *(u64 *)(r10 -16) = r7
    r1 = map[{MAP_NAME}] ll
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -24
    r4 = 0
    call bpf_map_update_elem
pass:
    r0 = 2                        ; XDP_PASS: count, never drop
    exit
"""

class Counter(Struct):
    """One CPU's counts for one protocol: the map's value."""

    packets: u64
    bytes: u64


IP_PROTOCOLS = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 58: "ICMPv6", 132: "SCTP"}
ETHER_TYPES = {0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "VLAN", 0x88CC: "LLDP"}


@dataclass(frozen=True)
class Count:
    key: int
    packets: int
    bytes: int

    @property
    def protocol(self) -> str:
        if self.key >= NON_IP:
            ether_type = self.key & 0xFFFF
            return ETHER_TYPES.get(ether_type, f"EtherType {ether_type:#06x}")
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


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    step = _Steps(5)
    print("pykex demo: an XDP program counts real packets per protocol\n")
    with ExitStack() as cleanup:
        step("Assembling the XDP program")
        encoded = encode(assemble(COUNT_PER_PROTOCOL, "count_per_protocol.s"))
        print(f"      {encoded.slot_count} instructions, one per-CPU hash map {MAP_NAME!r}")

        step("Loading map and program into the kernel")
        counts = cleanup.enter_context(
            PerCpuHashMap.create(u32, Counter, MAX_PROTOCOLS, name=MAP_NAME)
        )
        relocations = [
            MapRelocation(r.slot, r.name)
            for r in encoded.relocations
            if r.kind is RelocationKind.MAP
        ]
        program = cleanup.enter_context(
            Program.load(
                ProgType.XDP,
                encoded.code,
                name="count_protocols",
                relocations=relocations,
                maps={MAP_NAME: int(counts.fd)},
            )
        )
        info = program.info()
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

        step(f"Attaching the program to {network.host_ifname}")
        cleanup.callback(print, "      detached the program")
        link = cleanup.enter_context(attach_xdp(program, network.host_ifname))
        print(f"      XDP link {link.id} in native mode; every frame arriving here is counted")

        step("Sending traffic from inside the namespace")
        replies = network.ping(args.pings) if args.pings else 0
        print(f"      {args.pings} pings sent, {replies} answered")
        network.send_udp(args.datagrams, UDP_PORT, UDP_PAYLOAD)
        print(f"      {args.datagrams} UDP datagrams sent to port {UDP_PORT}")

        print("\nWhat the program counted:\n")
        print(format_counts(read_counts(counts)))
        print("\nCleaning up")
    if network.namespace in namespaces():
        raise NetworkSetupError(f"namespace {network.namespace} is still there after cleanup")
    print(f"\nDone in {time.monotonic() - started:.1f} s; nothing is left behind.")
    return 0


class _Steps:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def __call__(self, text: str) -> None:
        self.done += 1
        print(f"[{self.done}/{self.total}] {text}", flush=True)


def read_counts(counts: PerCpuHashMap) -> list[Count]:
    """Every entry of the per-CPU map, summed over CPUs, most packets first."""
    found = []
    for key, per_cpu in counts.items():
        total = sum_per_cpu(per_cpu)
        found.append(Count(key, total.packets, total.bytes))
    return sorted(found, key=lambda c: (-c.packets, c.key))


def format_counts(counts: list[Count]) -> str:
    if not counts:
        return "  (no packets)"
    rows = [("Protocol", "Packets", "Bytes")]
    rows += [(c.protocol, str(c.packets), str(c.bytes)) for c in counts]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {packets:>8}  {size:>8}" for name, packets, size in rows)
