"""XDP and tcx links on a private veth pair, with real traffic from a namespace."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pykex.kernel import BPFError, ProgType
from pykex.kernel.link import InterfaceNotFoundError, Link, attach_tcx, attach_xdp
from pykex.kernel.uapi import AttachType, LinkType
from pykex.testing import VethNamespace

from .conftest import (
    array_map,
    counter,
    counting_program,
    per_protocol,
    percpu_protocol_map,
    protocol_counter,
    xdp_mode,
)

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

XDP_PASS = 2
TCX_NEXT = -1
IPPROTO_ICMP = 1
IPPROTO_UDP = 17


@pytest.fixture
def udp_receiver(veth: VethNamespace) -> Iterator[socket.socket]:
    """A UDP socket on the host end, so datagrams are delivered (no ICMP errors back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((veth.host_address, 0))
        receiver.settimeout(5)
        yield receiver


def receive(receiver: socket.socket, count: int) -> list[bytes]:
    return [receiver.recv(2048) for _ in range(count)]


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_xdp_counts_ipv4_packets_per_protocol(
    veth: VethNamespace, udp_receiver: socket.socket, mode: str
) -> None:
    """The acceptance test: exact per-protocol counts of real traffic."""
    icmp_sent, udp_sent = 7, 11
    counts = percpu_protocol_map()
    with protocol_counter(ProgType.XDP, counts, data=0, data_end=4, verdict=XDP_PASS) as prog:
        with attach_xdp(prog, veth.host_ifname, mode=mode) as link:  # type: ignore[arg-type]
            assert xdp_mode(veth.host_ifname) == {"native": "xdp", "generic": "xdpgeneric"}[mode]
            info = link.info()
            assert info.type is LinkType.XDP
            assert info.ifindex == veth.host_ifindex
            assert info.prog_id == prog.info().id

            assert veth.ping(icmp_sent) == icmp_sent
            veth.send_udp(udp_sent, udp_receiver.getsockname()[1], b"counted")
            assert receive(udp_receiver, udp_sent) == [b"counted"] * udp_sent

            # ARP and IPv6 neighbour discovery cross the link too: only IPv4 counts.
            assert per_protocol(counts) == {IPPROTO_ICMP: icmp_sent, IPPROTO_UDP: udp_sent}
        assert not link.attached
        assert xdp_mode(veth.host_ifname) is None
    veth.ping(3)
    assert per_protocol(counts) == {IPPROTO_ICMP: icmp_sent, IPPROTO_UDP: udp_sent}


def test_xdp_by_index_and_auto_mode(veth: VethNamespace) -> None:
    counts = array_map()
    with (
        counting_program(ProgType.XDP, counts, verdict=XDP_PASS) as prog,
        attach_xdp(prog, veth.host_ifindex, mode="auto") as link,
    ):
        assert "xdp" in (xdp_mode(veth.host_ifname) or "")
        veth.ping(2)
        assert counter(counts) >= 2
        assert link.info().ifindex == veth.host_ifindex


def test_xdp_unknown_interface_is_named() -> None:
    counts = array_map()
    with counting_program(ProgType.XDP, counts, verdict=XDP_PASS) as prog:
        with pytest.raises(InterfaceNotFoundError, match="no network interface 'pkxnosuch0'"):
            attach_xdp(prog, "pkxnosuch0")
        with pytest.raises(ValueError, match="XDP mode must be one of"):
            attach_xdp(prog, "pkxnosuch0", mode="turbo")  # type: ignore[arg-type]


def test_second_xdp_link_on_one_interface_is_refused(veth: VethNamespace) -> None:
    counts = array_map()
    with (
        counting_program(ProgType.XDP, counts, verdict=XDP_PASS) as prog,
        attach_xdp(prog, veth.host_ifname),
        pytest.raises(BPFError, match="already has an XDP program"),
    ):
        attach_xdp(prog, veth.host_ifname)


def test_update_swaps_the_program(veth: VethNamespace) -> None:
    counts = array_map()
    first = counting_program(ProgType.XDP, counts, index=0, verdict=XDP_PASS)
    second = counting_program(ProgType.XDP, counts, index=1, verdict=XDP_PASS)
    with first, second, attach_xdp(first, veth.host_ifname) as link:
        veth.ping(3)
        before = counter(counts, 0)
        assert before >= 3 and counter(counts, 1) == 0

        with pytest.raises(BPFError):  # only swaps when the expected program is attached
            link.update(first, expected=second)
        link.update(second, expected=first)
        assert link.info().prog_id == second.info().id

        veth.ping(4)
        assert counter(counts, 0) == before
        assert counter(counts, 1) >= 4


def test_pin_and_open_again(veth: VethNamespace, pin_dir) -> None:
    counts = array_map()
    with counting_program(ProgType.XDP, counts, verdict=XDP_PASS) as prog:
        link = attach_xdp(prog, veth.host_ifname)
        try:
            path = link.pin(str(pin_dir / "xdp_link"))
            reopened = Link.from_pin(path)
            assert reopened.info() == link.info()
            assert reopened.pinned_path == path

            link.detach()  # the pin keeps it attached
            assert xdp_mode(veth.host_ifname) == "xdp"
            reopened.unpin()
            reopened.detach()
            assert xdp_mode(veth.host_ifname) is None
        finally:
            link.detach()


def test_from_pin_refuses_what_is_not_a_link(pin_dir) -> None:
    counts = array_map()
    counts.pin(str(pin_dir / "map"))
    with pytest.raises(ValueError, match="holds a BPF map, not a link"):
        Link.from_pin(str(pin_dir / "map"))


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_tcx_counts_each_direction(veth: VethNamespace, direction: str) -> None:
    attach_type = {"ingress": AttachType.TCX_INGRESS, "egress": AttachType.TCX_EGRESS}[direction]
    pings = 6
    counts = percpu_protocol_map()
    prog = protocol_counter(
        ProgType.SCHED_CLS,
        counts,
        data=76,
        data_end=80,
        verdict=TCX_NEXT,
        expected_attach_type=attach_type,
    )
    with prog, attach_tcx(prog, veth.host_ifname, direction) as link:  # type: ignore[arg-type]
        info = link.info()
        assert info.type is LinkType.TCX
        assert info.ifindex == veth.host_ifindex
        assert info.attach_type is attach_type
        assert veth.ping(pings) == pings
        # Echo requests come in, echo replies go out: one ICMP packet per ping each way.
        assert per_protocol(counts) == {IPPROTO_ICMP: pings}
