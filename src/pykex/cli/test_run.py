"""``pykex test-run``: compile an extension, load it and run one program on a packet.

The run goes through BPF_PROG_TEST_RUN (or the host-mode interpreter with
``--host``). It prints the return value (with its verdict name for xdp and
tc programs), the packet as the program left it, the kernel's mean time per
run, and any exception the program raised, as a Python traceback. ``--json``
prints the same as one JSON object. Packet programs run on a small UDP/IPv4
frame unless ``--packet-hex`` gives one.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pykex.lang import prelude
from pykex.net import build_udp_ipv4
from pykex.runtime import RunResult, load, load_host
from pykex.runtime.base import PACKET_KINDS
from pykex.runtime.errors import ExceptionReport

from .check import CommandError, add_opt_level, compilation, guarded

HELP = "load an extension and run one of its programs on a packet (BPF_PROG_TEST_RUN)"

# Program kinds BPF_PROG_TEST_RUN refuses (with ENOTSUPP).
KERNEL_CANNOT_RUN = frozenset({"tracepoint", "kprobe", "perf_event"})

VERDICTS: dict[str, dict[int, str]] = {
    "xdp": {getattr(prelude, n): n for n in prelude.__all__ if n.startswith("XDP_")},
    "tc": {getattr(prelude, n): n for n in prelude.__all__ if n.startswith("TC_ACT_")},
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PROG.py", help="extension source file")
    parser.add_argument("-p", "--program", metavar="NAME",
                        help="the program to run (may be omitted when there is only one)")
    parser.add_argument("--packet-hex", metavar="HEX",
                        help="the packet, in hexadecimal (spaces allowed; default: a UDP/IPv4 "
                        "frame from pykex.net.build_udp_ipv4())")
    parser.add_argument("--ctx-hex", metavar="HEX",
                        help="the context, in hexadecimal: a raw tracepoint's arguments as "
                        "u64s, or (with --host) a tracepoint's record")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run N times; the duration is the mean per run (default: 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--host", action="store_true",
                        help="run in the host-mode interpreter instead of the kernel")
    add_opt_level(parser)


def parse_hex(option: str, text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise CommandError(f"{option} is not hexadecimal bytes: {text[:40]!r}") from None


def test_input(args: argparse.Namespace, kind: str) -> tuple[bytes, bytes | None]:
    """The packet and the context of the run."""
    if kind in KERNEL_CANNOT_RUN and not args.host:
        raise CommandError(
            f"the kernel cannot test-run {kind} programs (BPF_PROG_TEST_RUN does not "
            "support them); run it in host mode with --host --ctx-hex RECORD"
        )
    if args.packet_hex is not None:
        packet = parse_hex("--packet-hex", args.packet_hex)
    else:
        packet = build_udp_ipv4(b"pykex") if kind in PACKET_KINDS else b""
    ctx = parse_hex("--ctx-hex", args.ctx_hex) if args.ctx_hex is not None else None
    return packet, ctx


def verdict(kind: str, retval: int) -> tuple[int, str | None]:
    """The return value as the program's kind reads it, and its verdict name."""
    if kind == "tc" and retval >= 1 << 31:  # tc verdicts are signed (TC_ACT_UNSPEC is -1)
        retval -= 1 << 32
    return retval, VERDICTS.get(kind, {}).get(retval)


def exception_json(report: ExceptionReport) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "message": report.message,
        "traceback": str(report),
        "frames": [
            {"file": f.file, "line": f.line, "function": f.function, "text": f.text}
            for f in report.frames
        ],
    }


@guarded
def run(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise CommandError(f"--repeat must be at least 1, got {args.repeat}")
    build = compilation(args.path, args.opt_level)
    programs = {program.name: program.kind.name for program in build.compiled.programs}
    name = choose_program(args.path, programs, args.program)
    packet, ctx = test_input(args, programs[name])
    with load_host(build) if args.host else load(build) as extension:
        try:
            result = extension.programs[name].test_run(packet, repeat=args.repeat, ctx=ctx)
        except ValueError as refused:  # the runtime's reason for refusing this input
            raise CommandError(str(refused)) from None
        raised = extension.exceptions()[name]
    if args.json:
        print(json.dumps(result_json(name, programs[name], packet, args.repeat, result, raised)))
    else:
        print_result(name, programs[name], packet, args.repeat, result, raised)
    return 0


def choose_program(path: str, programs: dict[str, str], wanted: str | None) -> str:
    listed = ", ".join(programs) or "none"
    if wanted is None:
        if len(programs) != 1:
            raise CommandError(f"{path} has {len(programs)} programs ({listed}); "
                               "name one with --program")
        return next(iter(programs))
    if wanted not in programs:
        raise CommandError(f"{path} has no program {wanted!r} (programs: {listed})")
    return wanted


def result_json(name: str, kind: str, packet: bytes, repeat: int, result: RunResult,
                raised: int) -> dict[str, Any]:
    retval, verdict_name = verdict(kind, result.retval)
    return {
        "program": name,
        "kind": kind,
        "retval": retval,
        "verdict": verdict_name,
        "packet_in": packet.hex(),
        "packet_out": result.packet.hex(),
        "repeat": repeat,
        "duration_ns": result.duration_ns,
        "exception": exception_json(result.exception) if result.exception else None,
        "exceptions_raised": raised,
    }


def print_result(name: str, kind: str, packet: bytes, repeat: int, result: RunResult,
                 raised: int) -> None:
    retval, verdict_name = verdict(kind, result.retval)
    print(f"program:  {name} ({kind})")
    print(f"returned: {retval}" + (f" ({verdict_name})" if verdict_name else ""))
    if kind in PACKET_KINDS:
        if result.packet == packet:
            print(f"packet:   unchanged ({len(packet)} bytes)")
        else:
            print(f"packet:   {result.packet.hex()} ({len(result.packet)} bytes)")
    if result.duration_ns is not None:
        runs = f"mean of {repeat} runs" if repeat > 1 else "1 run"
        print(f"duration: {result.duration_ns} ns per run ({runs})")
    if result.exception is not None:
        times = f" ({raised} of {repeat} runs raised)" if repeat > 1 else ""
        print(f"exception{times}:")
        print(result.exception)
