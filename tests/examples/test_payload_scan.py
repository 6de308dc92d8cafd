"""examples/payload_scan.py: a byte-by-byte scan of full-size payloads."""

from __future__ import annotations

import pytest

from pykex.lang.prelude import XDP_DROP, XDP_PASS
from pykex.net import build_icmp_echo_ipv4, build_tcp_ipv4, build_udp_ipv4, build_udp_ipv6

SIGNATURE = b"/etc/passwd"
PAYLOAD = 1500 - 20 - 8  # a UDP payload filling a 1,500-byte IPv4 packet


def payload_with(position: int | None, size: int = PAYLOAD) -> bytes:
    """``size`` bytes of harmless text with the signature at ``position``
    (or nowhere); near misses are sprinkled everywhere."""
    filler = (b"/etc/passwe-" * (size // 12 + 1))[:size]
    if position is None:
        return filler
    return filler[:position] + SIGNATURE + filler[position + len(SIGNATURE) :]


CASES = {
    "clean": (build_udp_ipv4(payload_with(None)), XDP_PASS, True),
    "at-start": (build_udp_ipv4(payload_with(0)), XDP_DROP, True),
    "in-middle": (build_udp_ipv4(payload_with(733)), XDP_DROP, True),
    "at-very-end": (build_udp_ipv4(payload_with(PAYLOAD - len(SIGNATURE))), XDP_DROP, True),
    "cut-by-the-end": (build_udp_ipv4(payload_with(None)[:-5] + SIGNATURE[:5]), XDP_PASS,
                       True),
    "tcp-payload": (build_tcp_ipv4(payload_with(100, 1460)), XDP_DROP, True),
    # The scan covers TCP and UDP payloads over IPv4 only.
    "icmp": (build_icmp_echo_ipv4(payload_with(0, 100)), XDP_PASS, False),
    "ipv6": (build_udp_ipv6(payload_with(0, 100)), XDP_PASS, False),
    "in-headers-only": (build_udp_ipv4(b"x", saddr="47.101.116.99"), XDP_PASS, True),
}


@pytest.mark.parametrize("name", CASES)
def test_verdicts(name: str, open_example) -> None:
    frame, verdict, scanned = CASES[name]
    ext = open_example("payload_scan")
    result = ext.scan.test_run(frame)
    assert (result.retval, result.exception) == (verdict, None)
    assert sum(ext.scanned[0]) == int(scanned)
    assert sum(ext.dropped[0]) == int(verdict == XDP_DROP)


def test_full_size_frame_many_times(open_example, mode: str) -> None:
    """The whole 1,472-byte payload, 200 times (the kernel's duration is its cost)."""
    frame = build_udp_ipv4(payload_with(PAYLOAD - len(SIGNATURE)))
    assert len(frame) == 14 + 1500
    ext = open_example("payload_scan")
    repeat = 200 if mode == "kernel" else 2
    result = ext.scan.test_run(frame, repeat=repeat)
    assert (result.retval, result.exception) == (XDP_DROP, None)
    assert sum(ext.dropped[0]) == sum(ext.scanned[0]) == repeat
    if mode == "kernel":
        assert result.duration_ns is not None and result.duration_ns > 0
