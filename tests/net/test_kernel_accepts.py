"""The kernel as an independent checksum verifier for pykex.net's builders.

Frames built by :func:`pykex.net.build_udp_ipv4` are injected with a packet
socket into the root end of a veth pair; a UDP socket inside the namespace
receives the datagrams the kernel accepts. veth leaves checksums unverified
(CHECKSUM_NONE), so the receiving stack checks both the IPv4 header checksum
and the UDP checksum: the good frame must arrive and the two corrupted ones
must not.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pykex.net import build_udp_ipv4
from pykex.testing import VethNamespace

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

PORT = 40000
RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(1.0)
print("ready", flush=True)
try:
    while True:
        print(s.recv(2048).hex(), flush=True)
except TimeoutError:
    pass
"""


def corrupt(frame: bytes, offset: int) -> bytes:
    return frame[:offset] + bytes([frame[offset] ^ 0x01]) + frame[offset + 1 :]


def test_kernel_accepts_built_frames_and_rejects_corrupted_ones() -> None:
    with VethNamespace(prefix="pkxnet") as net:
        peer_mac = net.run(["cat", f"/sys/class/net/{net.peer_ifname}/address"]).stdout
        host_mac = Path(f"/sys/class/net/{net.host_ifname}/address").read_text()

        def frame(payload: bytes) -> bytes:
            return build_udp_ipv4(payload, sport=50000, dport=PORT, saddr=net.host_address,
                                  daddr=net.peer_address, src_mac=host_mac.strip(),
                                  dst_mac=peer_mac.decode().strip())

        good = frame(b"accepted")
        bad_ip_checksum = corrupt(frame(b"bad ip header"), 14 + 10)
        bad_udp_checksum = corrupt(frame(b"bad udp"), 14 + 20 + 6)
        receiver = subprocess.Popen(
            ["ip", "netns", "exec", net.namespace, sys.executable, "-c", RECEIVER,
             net.peer_address, str(PORT)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert receiver.stdout is not None
            assert receiver.stdout.readline() == "ready\n"
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as injector:
                injector.bind((net.host_ifname, 0))
                for sent in (bad_ip_checksum, bad_udp_checksum, good):
                    injector.send(sent)
            output, _ = receiver.communicate(timeout=10)
        finally:
            if receiver.poll() is None:
                receiver.kill()
                receiver.wait()
    assert [bytes.fromhex(line) for line in output.split()] == [b"accepted"]
