"""Loaded extensions: verdicts, typed maps, exception reports and counters.

Every test runs on the kernel and in host mode (see conftest.py) with the
same expectations, so host mode is checked against the kernel's behaviour.
"""

from __future__ import annotations

import struct

import pytest

from pykex.kernel import syscall
from pykex.kernel.maps import possible_cpus
from pykex.lang.prelude import TerminationError
from pykex.runtime import load_host

from . import extensions as fx
from .extensions import XDP_DROP, XDP_PASS, Counter, ipv4_packet

SHORT_TRACEBACK = f"""\
Traceback (most recent call last):
  File "fw.py", line {fx.line_of("ip = parse_ip(ctx)")}, in firewall
    ip = parse_ip(ctx)
  File "fw.py", line {fx.line_of("hdr = read_header(ctx, 14)")}, in parse_ip
    hdr = read_header(ctx, 14)
  File "fw.py", line {fx.line_of("return ctx.packet.read(offset, IPv4)")}, in read_header
    return ctx.packet.read(offset, IPv4)
IndexError: packet offset 14 + 20 > length 20"""


def test_verdicts(open_extension) -> None:
    ext = open_extension(fx.module())
    packet = ipv4_packet(saddr=bytes([10, 0, 0, 1]))
    assert ext.firewall.test_run(packet).retval == XDP_PASS
    ext.blocked[0x0A000001] = 1
    result = ext.firewall.test_run(packet)
    assert (result.retval, result.packet, result.exception) == (XDP_DROP, packet, None)
    assert ext.firewall.test_run(ipv4_packet(saddr=bytes([10, 0, 0, 2]))).retval == XDP_PASS
    del ext.blocked[0x0A000001]
    assert ext.firewall.test_run(packet).retval == XDP_PASS


def test_map_views_after_runs(open_extension) -> None:
    ext = open_extension(fx.module())
    tcp, udp = ipv4_packet(protocol=6), ipv4_packet(protocol=17, payload=100)
    for packet in (tcp, tcp, udp, tcp):
        ext.firewall.test_run(packet)
    idle = [Counter()] * (len(possible_cpus()) - 1)
    assert ext.stats[6] == [Counter(packets=3, bytes=3 * len(tcp)), *idle]
    assert ext.stats[17] == [Counter(packets=1, bytes=len(udp)), *idle]
    assert ext.stats.sum(6).packets == 3
    assert ext.maps["stats"][1] == [Counter()] * len(possible_cpus())
    ext.blocked[7] = 1
    assert dict(ext.blocked.items()) == {7: 1}
    assert 7 in ext.blocked and 8 not in ext.blocked
    with pytest.raises(IndexError, match="out of range"):
        ext.stats[256]


def test_short_packet_raises_with_traceback(open_extension) -> None:
    ext = open_extension(fx.module())
    result = ext.firewall.test_run(bytes(20))
    assert result.retval == XDP_PASS  # the on_error verdict
    report = result.exception
    assert report is not None
    assert str(report) == SHORT_TRACEBACK
    assert (report.kind, report.program) == ("IndexError", "firewall")
    assert [frame.function for frame in report.frames] == ["firewall", "parse_ip", "read_header"]
    assert ext.stats.sum(6) == Counter()  # it raised before counting


def test_raise_for_gives_the_python_exception(open_extension) -> None:
    ext = open_extension(fx.module())
    with pytest.raises(IndexError, match=r"^packet offset 14 \+ 20 > length 30\n") as caught:
        ext.firewall.test_run(bytes(30)).check()
    assert caught.value.report.frames[-1].function == "read_header"
    assert SHORT_TRACEBACK.replace("length 20", "length 30") in caught.value.__notes__
    assert ext.firewall.test_run(ipv4_packet()).check().retval == XDP_PASS


def test_exception_counters(open_extension) -> None:
    ext = open_extension(fx.module())
    assert ext.exceptions().total == 0
    for size in (14, 20, 33):
        ext.firewall.test_run(bytes(size))
    ext.firewall.test_run(ipv4_packet())
    counts = ext.exceptions()
    [short_site] = [s for s in ext.sites if s.message.startswith("packet offset")]
    assert counts.by_site == {short_site.id: 3}
    assert counts.by_program == {"firewall": 3, "watch": 0}
    assert counts["firewall"] == 3 and counts.total == 3
    assert counts.site(short_site.id).locs[0].function == "read_header"
    assert ext.lost_reports == 0


def test_repeated_run_reports_every_exception(open_extension) -> None:
    ext = open_extension(fx.module())
    result = ext.firewall.test_run(bytes(25), repeat=5)
    assert result.retval == XDP_PASS
    assert len(result.exceptions) == 5
    assert {r.message for r in result.exceptions} == {"packet offset 14 + 20 > length 25"}
    assert ext.exceptions()["firewall"] == 5


def test_context_programs_run_on_a_given_context(open_extension) -> None:
    ext = open_extension(fx.module())
    quiet = ext.watch.test_run(ctx=struct.pack("<QQ", 0, 0))
    assert (quiet.retval, quiet.exception) == (0, None)
    refused = ext.watch.test_run(ctx=struct.pack("<QQ", 0, fx.GETPID))
    assert refused.retval == 0
    assert str(refused.exception) == "\n".join([
        "Traceback (most recent call last):",
        f'  File "fw.py", line {fx.line_of("check_syscall(ctx.arg(1))")}, in watch',
        "    check_syscall(ctx.arg(1))",
        f'  File "fw.py", line {fx.line_of("raise ValueError")}, in check_syscall',
        '    raise ValueError(f"syscall {nr} is not allowed")',
        "ValueError: syscall 39 is not allowed",
    ])
    with pytest.raises(ValueError, match="syscall 39"):
        refused.check()
    # Another process's getpid passes: the program filters on the pid.
    other = open_extension(fx.module(pid=1))
    assert other.watch.test_run(ctx=struct.pack("<QQ", 0, fx.GETPID)).exception is None


def test_packets_shorter_than_ethernet_are_refused(open_extension) -> None:
    ext = open_extension(fx.module())
    with pytest.raises(ValueError, match="at least 14 bytes"):
        ext.firewall.test_run(bytes(13))


def test_programs_and_maps_by_name(open_extension) -> None:
    ext = open_extension(fx.module())
    assert set(ext.programs) == {"firewall", "watch"}
    assert set(ext.maps) == {"blocked", "stats"}  # runtime maps stay hidden
    assert ext.firewall is ext.programs["firewall"] and ext.stats is ext.maps["stats"]
    assert ext.firewall.kind == "xdp" and ext.watch.kind == "raw_tracepoint"
    with pytest.raises(AttributeError, match="no program or map 'missing'"):
        ext.missing  # noqa: B018
    assert {"firewall", "stats"} <= set(dir(ext))


def test_array_and_hash_semantics(open_extension) -> None:
    ext = open_extension(fx.module())
    with pytest.raises(TypeError, match="cannot be deleted"):
        del ext.stats[3]
    with pytest.raises(KeyError):
        del ext.blocked[99]
    ext.stats[3] = Counter(packets=5, bytes=6)
    assert ext.stats.sum(3) == Counter(packets=5 * len(possible_cpus()),
                                       bytes=6 * len(possible_cpus()))
    with pytest.raises(OverflowError):
        ext.blocked[1] = 256


def test_exhausted_loop_budget_raises_termination_error(open_extension) -> None:
    ext = open_extension(fx.spin_module(), loop_budget=1000)
    result = ext.spin.test_run(ipv4_packet())
    assert result.retval == XDP_PASS
    assert str(result.exception) == "\n".join([
        "Traceback (most recent call last):",
        '  File "spin.py", line 6, in spin',
        "    while True:",
        "TerminationError: loop ran out of its time budget",
    ])
    with pytest.raises(TerminationError):
        result.check()


def test_host_mode_makes_no_bpf_calls() -> None:
    def refuse(cmd: int, attr: object) -> int:
        raise AssertionError(f"host mode called bpf({cmd})")

    with syscall.override_backend(refuse):
        ext = load_host(fx.module())
        ext.blocked[0x0A000001] = 1
        assert ext.firewall.test_run(ipv4_packet()).retval == XDP_DROP
        assert ext.stats.sum(6).packets == 1


def test_reports_beyond_the_channel_are_lost_but_counted(open_extension) -> None:
    ext = open_extension(fx.module())
    result = ext.firewall.test_run(bytes(20), repeat=2000)
    capacity = 64 * 1024 // 48  # 40-byte records plus 8-byte headers in a 64 KiB ring
    assert len(result.exceptions) == capacity
    assert ext.lost_reports == 2000 - capacity
    assert ext.exceptions()["firewall"] == 2000
