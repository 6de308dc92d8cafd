"""Running a loaded program on chosen input (BPF_PROG_TEST_RUN), per program type.

Each program type reads its input differently, and the kernel answers a
mismatch with a bare EINVAL; the helpers here check the input first and say
what is wrong:

* XDP (:func:`run_xdp`): the packet, an Ethernet frame of at least 14 bytes;
  the program may rewrite, grow or shrink it, and ``data_out`` is the result.
* tc / sched_cls (:func:`run_tc`): a full Ethernet frame; the context is a
  ``struct __sk_buff`` of which a test may set a few fields
  (:func:`skb_context`), and ``ctx_out`` returns it.
* socket filter (:func:`run_socket_filter`): also a full Ethernet frame, but
  the program sees the packet from the network header on; its return value is
  the number of bytes to keep (0 drops).
* raw tracepoint (:func:`run_raw_tracepoint`): no packet, the context is the
  array of u64 tracepoint arguments; the kernel runs it once, on the calling
  CPU or, with ``cpu=``, on that CPU (``BPF_F_TEST_RUN_ON_CPU``), and
  measures no duration.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from . import syscall
from .program import Program
from .uapi import BPF_F_TEST_RUN_ON_CPU, ProgType

ETH_HLEN = 14
# The kernel refuses more arguments than a BPF function can take.
MAX_RAW_TRACEPOINT_ARGS = 12
_SKB_CONTEXT_FIELDS = struct.Struct("<8x I 20x I 12x 5I")  # mark, priority, cb[5]
# The kernel copies back its whole context struct (struct __sk_buff is 192
# bytes on 6.18) and fails with ENOSPC if it does not fit; it reports the
# size it wrote, so a roomy buffer suits every kernel.
_CTX_OUT_ROOM = 1024


@dataclass(frozen=True)
class TestRun:
    """The outcome of a test run."""

    __test__ = False  # not a pytest test class, despite the name

    retval: int  # the program's return value (u32)
    data_out: bytes  # the packet after the program ran (b"" without a packet)
    duration_ns: int  # mean time per run as the kernel measured it (0 for raw tracepoints)
    repeat: int  # how many times the program ran
    ctx_out: bytes = b""  # the context after the run, when one was passed in


def _check_type(program: Program, wanted: tuple[ProgType, ...], helper: str) -> None:
    if program.type not in wanted:
        names = " or ".join(kind.name.lower() for kind in wanted)
        raise ValueError(
            f"{helper} runs {names} programs, but {program.name or 'this program'} "
            f"is a {program.type.name.lower()} program"
        )


def _check_frame(frame: bytes, what: str) -> None:
    if len(frame) < ETH_HLEN:
        raise ValueError(
            f"{what} needs a full Ethernet frame (at least {ETH_HLEN} bytes), "
            f"got {len(frame)} bytes"
        )


def _check_repeat(repeat: int) -> None:
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, not {repeat}")


def _packet_run(program: Program, data: bytes, ctx: bytes, repeat: int) -> TestRun:
    result = syscall.prog_test_run(
        int(program.fd), data, repeat=repeat, ctx=ctx, ctx_out_size=_CTX_OUT_ROOM if ctx else 0
    )
    return TestRun(result.retval, result.data_out, result.duration_ns, repeat, result.ctx_out)


def run_xdp(program: Program, packet: bytes, *, repeat: int = 1) -> TestRun:
    """Run an XDP program on ``packet``; ``retval`` is the XDP action."""
    _check_type(program, (ProgType.XDP,), "run_xdp")
    _check_frame(packet, "an XDP test run")
    _check_repeat(repeat)
    return _packet_run(program, packet, b"", repeat)


def skb_context(*, mark: int = 0, priority: int = 0, cb: Sequence[int] = ()) -> bytes:
    """The leading part of a ``struct __sk_buff`` with the fields a test run
    may preset (``mark``, ``priority``, the 5-word control block ``cb``)."""
    if len(cb) > 5:
        raise ValueError(f"the control block has 5 words, got {len(cb)}")
    words = list(cb) + [0] * (5 - len(cb))
    return _SKB_CONTEXT_FIELDS.pack(mark, priority, *words)


def run_tc(program: Program, frame: bytes, *, repeat: int = 1, skb: bytes = b"") -> TestRun:
    """Run a tc (sched_cls/sched_act) program on an Ethernet ``frame``.

    ``skb`` presets context fields (see :func:`skb_context`); ``retval`` is the
    TC action and ``data_out`` the frame as the program left it.
    """
    _check_type(program, (ProgType.SCHED_CLS, ProgType.SCHED_ACT), "run_tc")
    _check_frame(frame, "a tc test run")
    _check_repeat(repeat)
    return _packet_run(program, frame, skb, repeat)


def run_socket_filter(program: Program, frame: bytes, *, repeat: int = 1) -> TestRun:
    """Run a socket filter on an Ethernet ``frame``; ``retval`` is the bytes kept."""
    _check_type(program, (ProgType.SOCKET_FILTER,), "run_socket_filter")
    _check_frame(frame, "a socket filter test run")
    _check_repeat(repeat)
    return _packet_run(program, frame, b"", repeat)


def run_raw_tracepoint(
    program: Program, args: Sequence[int] = (), *, cpu: int | None = None
) -> TestRun:
    """Run a raw tracepoint program once with ``args`` as its u64 arguments.

    ``cpu`` runs it on that CPU instead of the caller's.
    """
    _check_type(
        program, (ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE),
        "run_raw_tracepoint",
    )
    if len(args) > MAX_RAW_TRACEPOINT_ARGS:
        raise ValueError(
            f"a raw tracepoint takes at most {MAX_RAW_TRACEPOINT_ARGS} arguments, "
            f"got {len(args)}"
        )
    ctx = struct.pack(f"<{len(args)}Q", *(arg & 0xFFFF_FFFF_FFFF_FFFF for arg in args))
    # The kernel accepts neither repeat, nor output buffers, for this type.
    result = syscall.prog_test_run(
        int(program.fd),
        repeat=0,
        ctx=ctx,
        ctx_out_size=0,
        flags=BPF_F_TEST_RUN_ON_CPU if cpu is not None else 0,
        cpu=cpu or 0,
    )
    return TestRun(result.retval, b"", 0, 1)


def run(program: Program, data: bytes = b"", *, repeat: int = 1) -> TestRun:
    """Run ``program`` on ``data`` with the helper for its type.

    For raw tracepoints ``data`` is the packed u64 argument array.
    """
    if program.type == ProgType.XDP:
        return run_xdp(program, data, repeat=repeat)
    if program.type in (ProgType.SCHED_CLS, ProgType.SCHED_ACT):
        return run_tc(program, data, repeat=repeat)
    if program.type == ProgType.SOCKET_FILTER:
        return run_socket_filter(program, data, repeat=repeat)
    if program.type in (ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE):
        if len(data) % 8:
            raise ValueError(f"raw tracepoint arguments are u64s; got {len(data)} bytes")
        if repeat != 1:
            raise ValueError("raw tracepoint programs run exactly once per test run")
        return run_raw_tracepoint(program, struct.unpack(f"<{len(data) // 8}Q", data))
    raise ValueError(f"pykex has no test-run helper for {program.type.name.lower()} programs")
