"""Test-run helpers per program type, against the real kernel."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from pykex.bpf import (
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    Instruction,
    add64,
    call_helper,
    encode,
    exit,
    jeq,
    jgt,
    ldx,
    mov64,
    st,
)
from pykex.kernel import Program, ProgType
from pykex.kernel.cpus import online_cpus
from pykex.kernel.testrun import (
    TestRun,
    run,
    run_raw_tracepoint,
    run_socket_filter,
    run_tc,
    run_xdp,
    skb_context,
)

pytestmark = pytest.mark.kernel

XDP_DROP, XDP_PASS = 1, 2
VERDICT_BYTE = 14  # the first byte after the Ethernet header
MARKED = 0xFF


def load(prog_type: ProgType, body: list[Instruction], name: str) -> Program:
    return Program.load(prog_type, encode(body).code, name=name)


def packet_bounds(data_offset: int, end_offset: int, length: int, fail: str) -> list:
    """r2 = data, r3 = data_end from the context; jump to ``fail`` unless
    ``length`` bytes are there."""
    return [
        ldx(4, R2, R1, data_offset),
        ldx(4, R3, R1, end_offset),
        mov64(R4, R2),
        add64(R4, length),
        jgt(R4, R3, fail),
    ]


@pytest.fixture(scope="module")
def xdp_verdict() -> Iterator[Program]:
    """XDP_DROP when the byte after the Ethernet header is 0xff, else XDP_PASS."""
    body = [
        *packet_bounds(0, 4, VERDICT_BYTE + 1, "pass"),
        ldx(1, R5, R2, VERDICT_BYTE),
        jeq(R5, MARKED, "drop"),
        mov64(R0, XDP_PASS).with_label("pass"),
        exit(),
        mov64(R0, XDP_DROP).with_label("drop"),
        exit(),
    ]
    with load(ProgType.XDP, body, "xdp_verdict") as prog:
        yield prog


def frame(payload: bytes) -> bytes:
    return bytes(12) + b"\x08\x00" + payload


@pytest.mark.parametrize(
    ("packet", "verdict"),
    [
        (frame(b"\xff"), XDP_DROP),
        (frame(b"\x00"), XDP_PASS),
        (frame(b"\xfe"), XDP_PASS),
        (frame(b"\xff" + bytes(49)), XDP_DROP),
        (frame(b"\x01" + b"\xff" * 49), XDP_PASS),
        (frame(b""), XDP_PASS),  # too short to hold the verdict byte
    ],
    ids=["marked", "zero", "fe", "marked-long", "marked-later", "headers-only"],
)
def test_xdp_verdict_by_packet_byte(xdp_verdict: Program, packet: bytes, verdict: int) -> None:
    result = run_xdp(xdp_verdict, packet)
    assert result.retval == verdict
    assert result.data_out == packet
    assert result.repeat == 1


def test_xdp_repeat_reports_a_duration(xdp_verdict: Program) -> None:
    result = run_xdp(xdp_verdict, frame(b"\xff"), repeat=1000)
    assert (result.retval, result.repeat) == (XDP_DROP, 1000)
    assert 0 < result.duration_ns < 100_000


def test_xdp_rewritten_packet_comes_back() -> None:
    body = [
        *packet_bounds(0, 4, 1, "out"),
        st(1, R2, 0, 0xAB),
        mov64(R0, XDP_PASS).with_label("out"),
        exit(),
    ]
    with load(ProgType.XDP, body, "xdp_write") as prog:
        packet = frame(bytes(range(20)))
        result = run_xdp(prog, packet)
        assert result.retval == XDP_PASS
        assert result.data_out == b"\xab" + packet[1:]


def test_tc_sees_the_preset_mark_and_rewrites_the_frame() -> None:
    # __sk_buff: mark at 8, data at 76, data_end at 80. Returns the mark.
    body = [
        *packet_bounds(76, 80, 1, "out"),
        st(1, R2, 0, 0xCD),
        ldx(4, R0, R1, 8).with_label("out"),
        exit(),
    ]
    with load(ProgType.SCHED_CLS, body, "tc_mark") as prog:
        packet = frame(bytes(46))
        result = run_tc(prog, packet, skb=skb_context(mark=7, priority=3))
        assert result.retval == 7
        assert result.data_out == b"\xcd" + packet[1:]
        assert len(result.ctx_out) == 192  # sizeof(struct __sk_buff)
        mark, priority = (struct.unpack_from("<I", result.ctx_out, at)[0] for at in (8, 32))
        assert (mark, priority) == (7, 3)
        assert run_tc(prog, packet).retval == 0


def test_socket_filter_keeps_what_it_returns() -> None:
    # Returns skb->len: a socket filter sees the packet from the network header on.
    with load(ProgType.SOCKET_FILTER, [ldx(4, R0, R1, 0), exit()], "sock_len") as prog:
        for size in (20, 100, 1000):
            packet = frame(bytes(size))
            assert run_socket_filter(prog, packet).retval == size
            assert run(prog, packet, repeat=10).retval == size


def test_raw_tracepoint_receives_its_arguments() -> None:
    body = [ldx(8, R0, R1, 0), ldx(8, R2, R1, 8), add64(R0, R2), exit()]
    with load(ProgType.RAW_TRACEPOINT, body, "rawtp_sum") as prog:
        assert run_raw_tracepoint(prog, [40, 2]) == TestRun(42, b"", 0, 1)
        assert run_raw_tracepoint(prog, [-1, 1]).retval == 0  # u64 arithmetic wraps
        assert run(prog, struct.pack("<QQ", 5, 6)).retval == 11


def test_raw_tracepoint_runs_on_the_chosen_cpu() -> None:
    body = [call_helper("bpf_get_smp_processor_id"), exit()]
    with load(ProgType.RAW_TRACEPOINT, body, "rawtp_cpu") as prog:
        for cpu in online_cpus():
            assert run_raw_tracepoint(prog, cpu=cpu).retval == cpu


def test_mismatched_input_is_refused_before_the_kernel_sees_it(xdp_verdict: Program) -> None:
    with pytest.raises(ValueError, match="at least 14 bytes"):
        run_xdp(xdp_verdict, bytes(13))
    with pytest.raises(ValueError, match="run_tc runs sched_cls or sched_act programs"):
        run_tc(xdp_verdict, frame(b""))
    with pytest.raises(ValueError, match="repeat must be at least 1"):
        run_xdp(xdp_verdict, frame(b""), repeat=0)
    with load(ProgType.RAW_TRACEPOINT, [mov64(R0, 0), exit()], "rawtp_nop") as prog:
        with pytest.raises(ValueError, match="at most 12 arguments"):
            run_raw_tracepoint(prog, [0] * 13)
        with pytest.raises(ValueError, match="exactly once"):
            run(prog, repeat=5)
    with pytest.raises(ValueError, match="5 words"):
        skb_context(cb=range(6))
