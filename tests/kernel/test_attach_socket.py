"""Socket filters and cgroup skb programs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pykex.kernel import ProgType
from pykex.kernel.link import attach_cgroup, attach_socket_filter
from pykex.kernel.uapi import AttachType, LinkType
from pykex.testing import VethNamespace

from .conftest import array_map, counter, counting_program, load

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

# Drops datagrams whose payload starts with "D"; keeps the rest whole. A UDP
# socket's filter sees the packet from the UDP header on: payload at byte 8.
DROP_D = """
    r6 = r1
    r0 = *(u8 *)skb[8]
    if r0 == 0x44 goto drop
    r0 = -1
    exit
drop:
    r0 = 0
    exit
"""


@pytest.fixture
def udp_pair() -> tuple[socket.socket, socket.socket]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    sender.connect(receiver.getsockname())
    yield receiver, sender
    receiver.close()
    sender.close()


def test_socket_filter_drops_and_keeps(udp_pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = udp_pair
    with load(ProgType.SOCKET_FILTER, DROP_D) as prog:
        with attach_socket_filter(prog, receiver) as link:
            with pytest.raises(ValueError, match="no bpf_link"):
                link.info()
            for message in (b"keep 1", b"Drop 1", b"keep 2", b"Drop 2", b"keep 3"):
                sender.send(message)
            # Datagrams on one socket arrive in order: a dropped one would show up here.
            assert [receiver.recv(64) for _ in range(3)] == [b"keep 1", b"keep 2", b"keep 3"]
        sender.send(b"Drop 3")
        assert receiver.recv(64) == b"Drop 3"


def test_socket_filter_needs_a_socket(tmp_path: Path) -> None:
    with (
        load(ProgType.SOCKET_FILTER, DROP_D) as prog,
        open(tmp_path / "f", "w") as not_a_socket,
        pytest.raises(ValueError, match="not an open socket"),
    ):
        attach_socket_filter(prog, not_a_socket)


def test_socket_filter_on_closed_socket_detaches_quietly() -> None:
    with load(ProgType.SOCKET_FILTER, DROP_D) as prog:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        link = attach_socket_filter(prog, sock)
    sock.close()
    link.detach()
    assert not link.attached


# Runs inside the veth namespace; waits for "go" (after the test moved it into
# the cgroup: a socket belongs to the cgroup of the process that created it),
# then sends COUNT datagrams to the host end.
SENDER = textwrap.dedent(
    """
    import socket, sys
    host, count = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(count):
            sock.sendto(b"cgroup", (host, 9))
    """
)


def test_cgroup_egress_counts_packets_of_its_processes(
    veth: VethNamespace, child_cgroup: Path
) -> None:
    datagrams = 8
    counts = array_map()
    prog = counting_program(
        ProgType.CGROUP_SKB,
        counts,
        verdict=1,
        expected_attach_type=AttachType.CGROUP_INET_EGRESS,
    )
    with prog, attach_cgroup(prog, str(child_cgroup), AttachType.CGROUP_INET_EGRESS) as link:
        info = link.info()
        assert info.type is LinkType.CGROUP
        assert info.attach_type is AttachType.CGROUP_INET_EGRESS
        assert info.cgroup_id == os.stat(child_cgroup).st_ino

        veth.ping(3)  # traffic of processes outside the cgroup is not counted
        sender = subprocess.Popen(
            ["ip", "netns", "exec", veth.namespace, sys.executable, "-c", SENDER,
             veth.host_address, str(datagrams)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert sender.stdout is not None
            assert sender.stdout.readline() == b"ready\n"
            (child_cgroup / "cgroup.procs").write_text(str(sender.pid))
            sender.communicate(b"go\n", timeout=30)
            assert sender.returncode == 0
        finally:
            if sender.poll() is None:
                sender.kill()
            sender.wait()
        assert counter(counts) == datagrams
