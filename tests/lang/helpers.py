"""Shared helpers for the front-end tests: build sources, compile, run in host mode."""

from __future__ import annotations

import textwrap

from pykex.ir.interp import Interpreter, RunResult
from pykex.ir.nodes import ModuleIR
from pykex.ir.passes import validate
from pykex.lang import check, compile_to_ir

HEADER = (
    "from pykex import xdp, tc, tracepoint, raw_tracepoint, XdpContext, TcContext, "
    "TracepointContext, RawTracepointContext, XDP_PASS, XDP_DROP, HashMap, LruHashMap, "
    "ArrayMap, PerCpuArray, LpmTrie, RingBuffer, Struct, Array, u8, u16, u32, u64, i8, i32, "
    "i64, be16, be32, atomic_add, ktime_ns, ntohs, htons, ntohl, TerminationError\n"
)


def source(text: str) -> str:
    """``text`` (dedented) after the standard import line, which is line 1."""
    return HEADER + textwrap.dedent(text).lstrip("\n")


def first_error(text: str, **options: object) -> str:
    diagnostics = check(source(text), "fw.py", **options)  # type: ignore[arg-type]
    assert diagnostics, "expected an error, the program was accepted"
    return diagnostics[0].headline


def compile_ok(text: str, **options: object) -> ModuleIR:
    diagnostics = check(source(text), "fw.py", **options)  # type: ignore[arg-type]
    assert not diagnostics, "\n".join(map(str, diagnostics))
    module = compile_to_ir(source(text), "fw.py", **options)  # type: ignore[arg-type]
    for program in module.programs:
        validate(program.function)
    return module


def run(text: str, packet: bytes = b"", program: str | None = None, **options: object
        ) -> RunResult:
    module = compile_ok(text, **options)
    machine = Interpreter(module, cpus=2)
    name = program or module.programs[0].name
    return machine.run(name, packet)


def returns(body: str, packet: bytes = b"", before: str = "") -> int:
    """Run ``body`` as the body of an XDP program and return its verdict; an
    exception fails the test (with the IR printed)."""
    text = before + "\n@xdp()\ndef prog(ctx: XdpContext) -> int:\n" + textwrap.indent(
        textwrap.dedent(body).strip("\n"), "    ") + "\n"
    module = compile_ok(text)
    result = Interpreter(module, cpus=2).run("prog", packet)
    assert result.exception is None, f"{result.exception.format()}\n{module}"
    return result.retval


def raises(body: str, packet: bytes = b"", before: str = "") -> str:
    """Run ``body`` as an XDP program that must raise; its formatted exception."""
    text = before + "\n@xdp()\ndef prog(ctx: XdpContext) -> int:\n" + textwrap.indent(
        textwrap.dedent(body).strip("\n"), "    ") + "\n"
    module = compile_ok(text)
    result = Interpreter(module, cpus=2).run("prog", packet)
    assert result.exception is not None, f"returned {result.retval}\n{module}"
    return result.exception.format()
