"""A private network to attach packet programs to: a namespace joined by a veth pair.

:class:`VethNamespace` creates a uniquely named network namespace and a veth
pair, one end in the root namespace (``host_ifname``) and its peer inside the
namespace (``peer_ifname``), with addresses from a free /30 of 10.0.0.0/8 (or
a given subnet). Traffic sent from inside the namespace to ``host_address``
arrives on the host end, where programs can be attached without touching the
machine's own interfaces.

Everything it creates is removed on leaving the ``with`` block, whether the
block finished, raised, or was interrupted; SIGINT is held back while the
pieces are created and removed so an interrupt cannot strand half of them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

_PRIVATE_RANGE = ipaddress.ip_network("10.0.0.0/8")

# Sends datagrams from inside the namespace: host, port, count, payload (hex).
_UDP_SENDER = """
import socket, sys
host, port, count, payload = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    for _ in range(count):
        sock.sendto(bytes.fromhex(payload), (host, port))
"""


class NetworkSetupError(RuntimeError):
    """An ``ip`` command failed while building or using the test network."""


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise NetworkSetupError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@contextmanager
def _sigint_held() -> Iterator[None]:
    """Delay SIGINT (and so KeyboardInterrupt) until the block is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination routed in the root namespace, in any table."""
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all") or "[]")
    used = []
    for route in routes:
        destination = route.get("dst", "default")
        if destination != "default":
            used.append(ipaddress.ip_network(destination, strict=False))
    return used


def free_subnet(prefix_length: int = 30) -> ipaddress.IPv4Network:
    """A random subnet of 10.0.0.0/8 that overlaps no route of the root namespace."""
    used = _used_networks()
    generator = random.SystemRandom()
    size = 1 << (32 - prefix_length)
    choices = _PRIVATE_RANGE.num_addresses // size
    for _ in range(1000):
        start = int(_PRIVATE_RANGE.network_address) + generator.randrange(choices) * size
        candidate = ipaddress.IPv4Network((start, prefix_length))
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise NetworkSetupError("no free subnet in 10.0.0.0/8")


class VethNamespace:
    """A network namespace plus a veth pair into it; a context manager.

    ``host_ifname``/``host_address`` are the end in the root namespace,
    ``peer_ifname``/``peer_address`` the end inside ``namespace``.
    """

    def __init__(self, subnet: str | None = None, prefix: str = "pkx") -> None:
        token = secrets.token_hex(3)
        if len(prefix) + len(token) + 1 > 15:
            raise ValueError(f"prefix {prefix!r} is too long for an interface name")
        self.namespace = f"{prefix}{token}"
        self.host_ifname = f"{prefix}{token}a"
        self.peer_ifname = f"{prefix}{token}b"
        self.subnet = ipaddress.ip_network(subnet) if subnet else free_subnet()
        hosts = list(self.subnet.hosts())
        if len(hosts) < 2:
            raise ValueError(f"subnet {self.subnet} has room for fewer than two addresses")
        self.host_address = str(hosts[0])
        self.peer_address = str(hosts[1])
        self._created = False

    @property
    def host_ifindex(self) -> int:
        return int(_read(f"/sys/class/net/{self.host_ifname}/ifindex"))

    def create(self) -> VethNamespace:
        """Build namespace and veth pair, up and addressed; undone entirely on failure."""
        with _sigint_held():
            self._created = True
            try:
                self._build()
            except BaseException:
                self._remove()
                raise
        return self

    def _build(self) -> None:
        length = self.subnet.prefixlen
        _ip("netns", "add", self.namespace)
        _ip("link", "add", self.host_ifname, "type", "veth",
            "peer", "name", self.peer_ifname, "netns", self.namespace)  # fmt: skip
        _ip("addr", "add", f"{self.host_address}/{length}", "dev", self.host_ifname)
        _ip("link", "set", self.host_ifname, "up")
        inside = ("-n", self.namespace)
        _ip(*inside, "addr", "add", f"{self.peer_address}/{length}", "dev", self.peer_ifname)
        _ip(*inside, "link", "set", self.peer_ifname, "up")
        _ip(*inside, "link", "set", "lo", "up")
        # Resolve both neighbours now: later datagrams then leave at once instead
        # of queueing behind ARP, where a burst could overflow the queue.
        if self.ping(1, timeout=5) != 1:
            raise NetworkSetupError(
                f"{self.peer_address} in {self.namespace} cannot reach {self.host_address}"
            )

    def remove(self) -> None:
        """Delete the veth pair and the namespace (safe to call more than once)."""
        with _sigint_held():
            self._remove()

    def _remove(self) -> None:
        if not self._created:
            return
        self._created = False
        problems = []
        # Deleting one end deletes both; the namespace would take its end with it,
        # but only later and asynchronously, so the pair goes first.
        for args in (("link", "del", self.host_ifname), ("netns", "del", self.namespace)):
            try:
                _ip(*args)
            except NetworkSetupError as failure:
                if "Cannot find device" not in str(failure) and "No such file" not in str(
                    failure
                ):
                    problems.append(str(failure))
        if problems:
            raise NetworkSetupError("; ".join(problems))

    def __enter__(self) -> VethNamespace:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- traffic -----------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``argv`` inside the namespace (``ip netns exec``)."""
        command = ["ip", "netns", "exec", self.namespace, *argv]
        result = subprocess.run(command, capture_output=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise NetworkSetupError(
                f"{' '.join(argv)} in {self.namespace} exited with {result.returncode}: "
                f"{result.stderr.decode(errors='replace').strip()}"
            )
        return result

    def ping(self, count: int, *, interval: float = 0.01, timeout: float = 2) -> int:
        """Send ``count`` ICMP echo requests to the host end; return the replies received."""
        result = self.run(
            ["ping", "-n", "-q", "-c", str(count), "-i", str(interval),
             "-W", str(timeout), self.host_address],
            check=False,
            timeout=count * interval + timeout + 30,
        )  # fmt: skip
        summary = re.search(rb"(\d+) received", result.stdout)
        if summary is None:
            raise NetworkSetupError(
                f"ping in {self.namespace} failed: {result.stderr.decode(errors='replace')}"
            )
        return int(summary.group(1))

    def send_udp(self, count: int, port: int, payload: bytes = b"pykex") -> None:
        """Send ``count`` UDP datagrams from inside the namespace to the host end."""
        self.run(
            [sys.executable, "-c", _UDP_SENDER, self.host_address, str(port), str(count),
             payload.hex()]
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"<VethNamespace {self.namespace}: {self.host_ifname} {self.host_address} <-> "
            f"{self.peer_ifname} {self.peer_address}>"
        )


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def namespaces() -> list[str]:
    """Names of the network namespaces ``ip netns`` knows."""
    run_dir = "/run/netns"
    return sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []
