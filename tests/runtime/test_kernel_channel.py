"""What only the kernel has: attached programs, the error channel read
asynchronously, links detached by close(), and host mode checked against it
run by run."""

from __future__ import annotations

import os
import platform
import random
import struct

import pytest

from pykex.compiler import Compilation
from pykex.net import build_icmp_echo_ipv4
from pykex.runtime import load, load_host
from pykex.testing import VethNamespace

from . import extensions as fx
from .extensions import Counter, ipv4_packet

pytestmark = pytest.mark.kernel


@pytest.mark.skipif(platform.machine() != "x86_64", reason="uses x86-64 syscall numbers")
def test_errors_of_an_attached_program() -> None:
    with load(Compilation.from_ir(fx.module())) as ext:
        link = ext.watch.attach()
        assert ext.links == [link] and link.info().tracepoint == "sys_enter"
        for _ in range(3):
            os.getpid()
        link.detach()
        reports = list(ext.errors(timeout=0))
        assert len(reports) >= 3  # other threads of this process may call getpid too
        assert {r.headline for r in reports} == {"ValueError: syscall 39 is not allowed"}
        assert [f.function for f in reports[0].frames] == ["watch", "check_syscall"]
        assert ext.exceptions()["watch"] == len(reports)
        assert list(ext.errors(timeout=0)) == []


@pytest.mark.skipif(platform.machine() != "x86_64", reason="uses x86-64 syscall numbers")
def test_test_run_leaves_other_programs_reports_to_errors() -> None:
    with load(Compilation.from_ir(fx.module())) as ext:
        with ext.watch.attach():
            os.getpid()
            short = ext.firewall.test_run(bytes(20))
        assert short.exceptions and all(r.program == "firewall" for r in short.exceptions)
        reports = list(ext.errors(timeout=0))
        assert reports and {r.program for r in reports} == {"watch"}
    with pytest.raises(ValueError, match="closed"):
        next(ext.errors())


def test_close_detaches_links_and_releases_the_module() -> None:
    ext = load(Compilation.from_ir(fx.module()))
    link = ext.watch.attach_raw_tracepoint()
    ext.close()
    assert not link.attached
    assert ext.module.programs == {} and ext.module.maps == {}


def test_wrong_attach_method_says_why() -> None:
    with load(Compilation.from_ir(fx.module())) as ext:
        with pytest.raises(TypeError, match="attach_xdp needs a xdp program, but 'watch'"):
            ext.watch.attach_xdp("pkx-none0")
        with pytest.raises(TypeError, match="needs interface="):
            ext.firewall.attach()


def test_xdp_attached_to_a_veth_counts_and_drops() -> None:
    with VethNamespace() as net, load(Compilation.from_ir(fx.module())) as ext:
        with ext.firewall.attach(interface=net.host_ifname, mode="generic") as link:
            assert link.info().ifindex == net.host_ifindex
            assert net.ping(3) == 3
            assert ext.stats.sum(1).packets >= 3  # ICMP, plus any other IPv4 traffic
            ext.blocked[int.from_bytes(bytes(map(int, net.peer_address.split("."))))] = 1
            assert net.ping(2, timeout=1) == 0
        assert not link.attached
        assert net.ping(1) == 1


def random_packets(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    packets = []
    for _ in range(count):
        choice = rng.random()
        if choice < 0.2:
            packets.append(rng.randbytes(rng.randrange(14, 34)))  # too short: raises
        elif choice < 0.4:
            packets.append(build_icmp_echo_ipv4(rng.randbytes(rng.randrange(0, 64))))
        else:
            packets.append(ipv4_packet(protocol=rng.choice([6, 17, 255]),
                                       saddr=bytes([10, 0, 0, rng.randrange(1, 4)]),
                                       payload=rng.randrange(0, 200)))
    return packets


def test_host_mode_matches_the_kernel_run_by_run() -> None:
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})  # per-CPU values land on CPU 0, as in host mode
    try:
        with load(Compilation.from_ir(fx.module())) as kernel:
            host = load_host(Compilation.from_ir(fx.module()))
            for ext in (kernel, host):
                ext.blocked[0x0A000002] = 1
            for packet in random_packets(seed=7, count=200):
                k, h = kernel.firewall.test_run(packet), host.firewall.test_run(packet)
                assert (k.retval, k.packet, list(map(str, k.exceptions))) == (
                    h.retval, h.packet, list(map(str, h.exceptions)))
            for ctx in (struct.pack("<QQ", 0, nr) for nr in (0, fx.GETPID, 1)):
                k, h = kernel.watch.test_run(ctx=ctx), host.watch.test_run(ctx=ctx)
                assert (k.retval, str(k.exception)) == (h.retval, str(h.exception))
            assert dict(kernel.stats.items()) == dict(host.stats.items())
            assert any(v[0] != Counter() for v in host.stats.values())
            assert dict(kernel.blocked.items()) == dict(host.blocked.items())
            assert kernel.exceptions() == host.exceptions()
            assert kernel.exceptions().total > 0
    finally:
        os.sched_setaffinity(0, affinity)
