"""The compiler driver: one :class:`Compilation` per extension, stages on demand.

Each stage is a cached property computed from the one before, so asking for
the disassembly parses, lowers, optimises and selects once, and asking for
the ELF object afterwards reuses all of that::

    source ─▶ ir ─▶ optimized_ir ─▶ compiled ─▶ object_spec ─▶ elf

``OUTPUT_FORMATS`` maps the names ``pykex build -f`` accepts to functions of
a compilation; each returns ``str`` (text formats) or ``bytes`` (``elf``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from pykex.bpf import SourceLocation, disassemble
from pykex.bpf.codegen import CompiledModule, CompiledProgram, generate
from pykex.bpf.codegen.loader import map_relocations
from pykex.btf import LineInfo
from pykex.elf.spec import (
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    RelocationKind,
    is_data_section,
)
from pykex.elf.writer import write_object
from pykex.ir.nodes import MapDecl, ModuleIR
from pykex.ir.passes import PIPELINES, optimize
from pykex.kernel.uapi import MapType

OPT_LEVELS = tuple(int(level.removeprefix("O")) for level in PIPELINES)


class Compilation:
    """Compiling the extension at ``path`` (or ``source``, named ``path``).

    ``opt_level`` picks the IR pass pipeline (0: none, 1: all). Stages are
    computed when first asked for; errors of a stage (the front end's
    :class:`~pykex.lang.diagnostics.CompileError`, a backend error) surface
    from the property that computes it.
    """

    def __init__(
        self, path: str | os.PathLike[str], source: str | None = None, opt_level: int = 1
    ) -> None:
        if opt_level not in OPT_LEVELS:
            known = ", ".join(map(str, OPT_LEVELS))
            raise ValueError(f"unknown optimisation level {opt_level!r} (known: {known})")
        self.path = os.fspath(path)
        self.opt_level = opt_level
        if source is not None:
            self.__dict__["source"] = source

    @classmethod
    def from_ir(cls, module: ModuleIR, opt_level: int = 1) -> Compilation:
        """A compilation that starts from IR built elsewhere (tests, other front ends)."""
        compilation = cls(module.file, module.source, opt_level)
        compilation.__dict__["ir"] = module
        return compilation

    # -- stages ---------------------------------------------------------------------

    @cached_property
    def source(self) -> str:
        with open(self.path, encoding="utf-8") as f:
            return f.read()

    @cached_property
    def ir(self) -> ModuleIR:
        """The front end's IR, before any pass."""
        from pykex.lang import compile_to_ir

        return compile_to_ir(self.source, filename=self.path)

    @cached_property
    def optimized_ir(self) -> ModuleIR:
        """The IR after the pipeline of ``opt_level`` (a copy: :attr:`ir` stays as it was)."""
        module = copy.deepcopy(self.ir)
        optimize(module, f"O{self.opt_level}")
        return module

    @cached_property
    def compiled(self) -> CompiledModule:
        return generate(self.optimized_ir)

    @cached_property
    def object_spec(self) -> ObjectSpec:
        """The compiled module as a BPF object: every map (runtime ones included)
        and every program in a libbpf section named after how it attaches."""
        compiled = self.compiled
        return ObjectSpec(
            programs=[_program_spec(program) for program in compiled.programs],
            maps=[_map_spec(decl) for decl in compiled.maps],
            license=compiled.license,
        )

    @cached_property
    def elf(self) -> bytes:
        return write_object(self.object_spec)

    # -- reports --------------------------------------------------------------------

    @cached_property
    def stats(self) -> list[ProgramStats]:
        return [
            ProgramStats(
                program=program.name,
                kind=program.kind.name,
                instructions=program.encode().slot_count,
                stack_bytes=program.stack_size,
                frame_bytes=program.frame_size,
            )
            for program in self.compiled.programs
        ]

    def output(self, format: str) -> str | bytes:
        """The output named ``format`` (see :data:`OUTPUT_FORMATS`)."""
        try:
            produce = OUTPUT_FORMATS[format]
        except KeyError:
            known = ", ".join(OUTPUT_FORMATS)
            raise ValueError(f"unknown output format {format!r} (known: {known})") from None
        return produce(self)


@dataclass(frozen=True)
class ProgramStats:
    program: str
    kind: str
    instructions: int  # 8-byte instruction slots, as the kernel counts them
    stack_bytes: int  # r10-relative spill slots
    frame_bytes: int  # the per-CPU frame map's value: locals plus the exception scratch


def section_name(program: CompiledProgram) -> str:
    """The libbpf section (``SEC()`` name) for how ``program`` attaches."""
    attach = program.attach
    kind = program.kind.name
    if kind == "tc":
        return f"tcx/{attach.get('direction', 'ingress')}"
    if kind in ("tracepoint", "raw_tracepoint"):
        return f"{kind}/{attach['tracepoint']}"
    if kind == "cgroup_skb":
        return f"cgroup_skb/{attach.get('direction', 'ingress')}"
    if kind == "socket_filter":
        return "socket"
    if kind == "kprobe" and "function" in attach:
        return f"kprobe/{attach['function']}"
    return kind


def _program_spec(program: CompiledProgram) -> ProgramSpec:
    encoded = program.encode()
    relocations = [
        Relocation(
            reloc.index,
            RelocationKind.MAP_VALUE if reloc.value else RelocationKind.MAP,
            reloc.name,
            reloc.offset,
        )
        for reloc in map_relocations(encoded, program)
    ]
    lines = [
        LineInfo(slot, source.file, source.text, source.line, source.column)
        for slot, source in _line_changes(encoded.lines)
    ]
    return ProgramSpec(
        program.name, section_name(program), encoded.code, relocations, line_info=lines
    )


def _line_changes(
    lines: tuple[tuple[int, SourceLocation], ...],
) -> list[tuple[int, SourceLocation]]:
    """Line records only where the source line changes, as compilers emit them.

    The kernel wants the first record at the program's first instruction; the
    prologue has no line of its own, so it is given the first line that follows.
    """
    out: list[tuple[int, SourceLocation]] = []
    previous = None
    for slot, source in lines:
        where = (source.file, source.line, source.column)
        if where != previous:
            out.append((slot, source))
            previous = where
    if out and out[0][0] != 0:
        out.insert(0, (0, out[0][1]))
    return out


def _map_spec(decl: MapDecl) -> MapSpec:
    data = None
    if is_data_section(decl.name):
        data = (decl.initial or b"").ljust(decl.value_size, b"\0")
    return MapSpec(
        name=decl.name,
        type=int(MapType[decl.kind]),
        key_size=decl.key_size,
        value_size=decl.value_size,
        max_entries=decl.max_entries,
        flags=decl.flags,
        data=data,
    )


def _format_ir(compilation: Compilation) -> str:
    return str(compilation.optimized_ir) + "\n"


def _format_asm(compilation: Compilation) -> str:
    parts = []
    for program in compilation.compiled.programs:
        head = (
            f"; program {program.name} ({program.kind.name}, section "
            f"{section_name(program)}, on_error={program.on_error})"
        )
        parts.append(head + "\n" + disassemble(program.instructions, source=True))
    return "\n".join(parts)


def _format_stats(compilation: Compilation) -> str:
    header = ("program", "kind", "instructions", "stack bytes", "frame bytes")
    rows = [header] + [
        (s.program, s.kind, str(s.instructions), str(s.stack_bytes), str(s.frame_bytes))
        for s in compilation.stats
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


OUTPUT_FORMATS: dict[str, Callable[[Compilation], str | bytes]] = {
    "ir": _format_ir,
    "asm": _format_asm,
    "elf": lambda compilation: compilation.elf,
    "stats": _format_stats,
}
