"""Extensions written as Python source, through the whole pipeline, in both modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykex.compiler import Compilation
from pykex.kernel.maps import possible_cpus
from pykex.lang import CompileError
from pykex.net import build_tcp_ipv4, build_udp_ipv4
from pykex.runtime import load_host

FIREWALL = """\
from pykex import xdp, XdpContext, XDP_PASS, XDP_DROP, HashMap, PerCpuArray, Struct
from pykex import u8, u32, u64, be16, be32


class Eth(Struct, packed=True):
    dst_hi: be32
    dst_lo: be16
    src_hi: be32
    src_lo: be16
    proto: be16


class Ip(Struct):
    version_ihl: u8
    tos: u8
    total_length: be16
    id: be16
    frag: be16
    ttl: u8
    protocol: u8
    check: be16
    saddr: be32
    daddr: be32


class Counter(Struct):
    packets: u64
    bytes: u64


blocked = HashMap[u32, u8](max_entries=1024)
stats = PerCpuArray[Counter](max_entries=256)


def read_ip(ctx: XdpContext) -> Ip:
    return ctx.packet.read(14, Ip)


def parse_ip(ctx: XdpContext) -> Ip:
    ip = read_ip(ctx)
    return ip


@xdp(on_error=XDP_PASS)
def firewall(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Eth)
    if eth.proto != 0x0800:
        return XDP_PASS
    ip = parse_ip(ctx)
    c = stats[ip.protocol]
    c.packets += 1
    c.bytes += len(ctx.packet)
    if ip.saddr in blocked:
        return XDP_DROP
    return XDP_PASS
"""
XDP_DROP, XDP_PASS = 1, 2


def line_of(text: str) -> int:
    [number] = [n for n, line in enumerate(FIREWALL.splitlines(), 1) if text in line]
    return number


@pytest.fixture
def firewall_path(tmp_path: Path) -> Path:
    path = tmp_path / "fw.py"
    path.write_text(FIREWALL)
    return path


def test_verdicts_and_maps(open_extension, firewall_path: Path) -> None:
    ext = open_extension(Compilation(firewall_path))
    tcp = build_tcp_ipv4(saddr="10.0.0.1")
    udp = build_udp_ipv4(b"x" * 40, saddr="10.0.0.9")
    assert [ext.firewall.test_run(p).retval for p in (tcp, udp, tcp)] == [XDP_PASS] * 3
    ext.blocked[0x0A000001] = 1
    assert ext.firewall.test_run(tcp).retval == XDP_DROP
    assert ext.firewall.test_run(udp).retval == XDP_PASS
    counter = type(ext.stats[6][0])
    idle = [counter()] * (len(possible_cpus()) - 1)
    assert ext.stats[6] == [counter(packets=3, bytes=3 * len(tcp)), *idle]
    assert ext.stats[17] == [counter(packets=2, bytes=2 * len(udp)), *idle]
    assert ext.firewall.test_run(build_tcp_ipv4()[:14] + bytes(4)).retval == XDP_PASS
    assert ext.exceptions().by_program == {"firewall": 1}


def test_traceback_three_calls_deep(open_extension, firewall_path: Path) -> None:
    ext = open_extension(Compilation(firewall_path))
    result = ext.firewall.test_run(build_tcp_ipv4()[:20])
    assert result.retval == XDP_PASS
    assert str(result.exception) == "\n".join([
        "Traceback (most recent call last):",
        f'  File "{firewall_path}", line {line_of("ip = parse_ip(ctx)")}, in firewall',
        "    ip = parse_ip(ctx)",
        f'  File "{firewall_path}", line {line_of("ip = read_ip(ctx)")}, in parse_ip',
        "    ip = read_ip(ctx)",
        f'  File "{firewall_path}", line {line_of("return ctx.packet.read(14, Ip)")}, in read_ip',
        "    return ctx.packet.read(14, Ip)",
        "IndexError: packet offset 14 + 20 > length 20",
    ])
    with pytest.raises(IndexError, match=r"offset 14 \+ 20 > length 20"):
        result.check()
    [site] = ext.exceptions().by_site
    assert ext.exceptions().by_site == {site: 1}
    assert ext.sites[site].locs[0].function == "read_ip"


def test_invalid_source_reports_diagnostics(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text(FIREWALL.replace("c.packets += 1", "c.packets += undefined_name"))
    with pytest.raises(CompileError) as caught:
        load_host(path)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.line == line_of("c.packets += 1")
    assert "undefined_name" in diagnostic.message
