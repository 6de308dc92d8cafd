"""examples/firewall.py: verdicts and per-protocol counters, on test packets and real traffic."""

from __future__ import annotations

import pytest

from pykex.lang.prelude import XDP_DROP, XDP_PASS
from pykex.net import (
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    build_arp,
    build_tcp_ipv4,
    build_udp_ipv4,
    build_udp_ipv6,
    ipv4_int,
)
from pykex.runtime import load
from pykex.testing import VethNamespace

from .conftest import example_path

BLOCKED = "10.0.0.66"


def totals(per_cpu: list) -> tuple[int, int]:
    """(packets, bytes) of one protocol, summed over CPUs."""
    return sum(c.packets for c in per_cpu), sum(c.bytes for c in per_cpu)


def test_verdicts_and_counters(open_example) -> None:
    ext = open_example("firewall")
    ext.blocked[ipv4_int(BLOCKED)] = 1
    udp = build_udp_ipv4(b"a" * 30, saddr="10.0.0.1")
    tcp = build_tcp_ipv4(saddr="10.0.0.2")
    from_blocked = build_udp_ipv4(b"b", saddr=BLOCKED)

    assert ext.firewall.test_run(udp, repeat=3).retval == XDP_PASS
    assert ext.firewall.test_run(tcp).retval == XDP_PASS
    assert ext.firewall.test_run(from_blocked, repeat=2).retval == XDP_DROP
    # Not IPv4: passed, and not counted.
    assert ext.firewall.test_run(build_arp(sender_ip=BLOCKED)).retval == XDP_PASS
    assert ext.firewall.test_run(build_udp_ipv6()).retval == XDP_PASS

    assert totals(ext.stats[IPPROTO_UDP]) == (5, 3 * len(udp) + 2 * len(from_blocked))
    assert totals(ext.stats[IPPROTO_TCP]) == (1, len(tcp))
    counted = {proto for proto, per_cpu in ext.stats.items() if totals(per_cpu) != (0, 0)}
    assert counted == {IPPROTO_UDP, IPPROTO_TCP}
    assert ext.exceptions().total == 0


def test_truncated_header_raises_and_passes(open_example) -> None:
    ext = open_example("firewall")
    truncated = build_udp_ipv4()[:20]  # Ethernet says IPv4; 6 of its 20 bytes follow
    result = ext.firewall.test_run(truncated)
    assert result.retval == XDP_PASS  # on_error
    report = result.exception
    assert report is not None and report.kind == "IndexError"
    (frame,) = report.frames
    assert frame.text == "ip = ctx.packet.read(Ethernet.size, IPv4)"
    lines = example_path("firewall").read_text().splitlines()
    assert lines[frame.line - 1].strip() == frame.text
    assert ext.exceptions()["firewall"] == 1
    assert all(totals(per_cpu) == (0, 0) for _, per_cpu in ext.stats.items())


@pytest.mark.kernel
@pytest.mark.netns
def test_real_pings_are_counted_then_blocked() -> None:
    """Kernel only: real traffic from a namespace through a veth pair."""
    with load(example_path("firewall")) as ext, VethNamespace(prefix="pkxfw") as net:
        with ext.firewall.attach(interface=net.host_ifname):
            assert net.ping(5) == 5
            # 5 echo requests in 98-byte frames; the pair was set up before attaching.
            assert totals(ext.stats[IPPROTO_ICMP]) == (5, 5 * 98)
            ext.blocked[ipv4_int(net.peer_address)] = 1
            assert net.ping(3, timeout=1) == 0
            assert totals(ext.stats[IPPROTO_ICMP]) == (8, 8 * 98)
            del ext.blocked[ipv4_int(net.peer_address)]
            assert net.ping(2) == 2
        assert not ext.links
