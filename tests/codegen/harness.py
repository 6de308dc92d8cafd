"""Building IR by hand and running it both in the kernel and in the interpreter."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

from pykex.bpf.codegen import CompiledModule, LoadedModule, generate, load
from pykex.ir.interp import Interpreter, RunResult
from pykex.ir.nodes import Block, Function, Instr, Loc, MapDecl, ModuleIR, ProgramIR, Temp

XDP_PASS, XDP_DROP, XDP_ABORTED = 2, 1, 0
FILE = "test_prog.py"


class FunctionBuilder:
    """Appends instructions to the current block; ``label()`` starts a new one."""

    def __init__(self, name: str = "prog", frame_size: int = 0) -> None:
        self.function = Function(name, frame_size=frame_size)
        self.current: Block | None = None
        self.line = 0

    def temp(self, hint: str = "", pointer: bool = False) -> Temp:
        return self.function.new_temp(hint, pointer)

    def label(self, name: str) -> FunctionBuilder:
        self.current = Block(name)
        self.function.blocks.append(self.current)
        return self

    def __call__(self, *instrs: Instr) -> FunctionBuilder:
        if self.current is None:
            self.label("entry")
        for instr in instrs:
            self.line += 1
            if instr.loc is None:
                instr.loc = Loc(FILE, self.line, 4, self.function.name)
            self.current.instrs.append(instr)
        return self


def module(
    *programs: tuple[FunctionBuilder, str, int], maps: list[MapDecl] | None = None
) -> ModuleIR:
    lines = "\n".join(f"line_{n}()" for n in range(1, 400))
    return ModuleIR(
        FILE,
        lines,
        maps=list(maps or []),
        programs=[
            ProgramIR(b.function.name, kind, b.function, on_error=on_error)
            for b, kind, on_error in programs
        ],
    )


@contextmanager
def loaded(ir: ModuleIR) -> Iterator[tuple[CompiledModule, LoadedModule]]:
    compiled = generate(ir)
    with load(compiled) as live:
        yield compiled, live


def run_both(
    live: LoadedModule, interp: Interpreter, name: str, packet: bytes
) -> tuple[tuple[int, bytes], RunResult]:
    result = live.programs[name].test_run(packet)
    return (result.retval, result.data_out), interp.run(name, packet)


def u64s(data: bytes, offset: int, count: int) -> tuple[int, ...]:
    return struct.unpack_from(f"<{count}Q", data, offset)
