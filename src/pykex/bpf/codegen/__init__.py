"""pykex.bpf.codegen: the backend, from ``pykex.ir`` to loadable eBPF.

Public API:

* ``generate(module: ModuleIR) -> CompiledModule``: legalizes each program's
  IR in place (:func:`pykex.ir.passes.legalize`), then instructions per program
  (map references by name, ``source`` = the Python line), every map the code
  needs (the module's plus frames and the error channel, see
  :mod:`.runtime`) and the module-wide exception site table.
* ``load(compiled) -> LoadedModule``: create the maps, load the programs, all
  or nothing. A verifier rejection raises :class:`VerifierRejectionError`
  (a pykex bug), naming the Python line the verifier stopped at.

docs/compiler.md explains why the generated code always verifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pykex.bpf.insn import Instruction
from pykex.bpf.program import EncodedProgram, encode
from pykex.ir.nodes import MapDecl, ModuleIR
from pykex.ir.passes import legalize

from .loader import LoadedModule, VerifierRejectionError, load
from .runtime import (
    ERROR_RECORD,
    ERRORS_LOST_MAP,
    ERRORS_MAP,
    EXC_COUNT_MAP,
    ErrorRecord,
    ExceptionSite,
    error_channel_maps,
    frame_layout,
    frame_map,
    frame_map_name,
)
from .select import CodegenError, FunctionSelector
from .target import PROGRAM_KINDS, ProgramKind, expected_attach_type, program_kind

MAX_STACK = 512


@dataclass
class CompiledProgram:
    name: str
    index: int  # position in the module, as error records name programs
    kind: ProgramKind
    instructions: list[Instruction]
    stack_size: int  # bytes of r10-relative spill slots
    frame_map: str
    frame_size: int  # bytes of the frame map's value
    on_error: int
    expected_attach_type: int
    attach: dict[str, object] = field(default_factory=dict)

    def encode(self) -> EncodedProgram:
        return encode(self.instructions)


@dataclass
class CompiledModule:
    file: str
    source: str
    license: str
    maps: list[MapDecl]
    programs: list[CompiledProgram]
    sites: list[ExceptionSite]  # index = site id

    def program(self, name: str) -> CompiledProgram:
        for program in self.programs:
            if program.name == name:
                return program
        raise KeyError(name)

    def map(self, name: str) -> MapDecl:
        for decl in self.maps:
            if decl.name == name:
                return decl
        raise KeyError(name)


def generate(module: ModuleIR) -> CompiledModule:
    """Compile every program of ``module``; see the package documentation."""
    source_lines = {module.file: module.source.splitlines()}
    taken = {m.name for m in module.maps}
    maps = list(module.maps)
    sites: list[ExceptionSite] = []
    programs = []
    for index, program in enumerate(module.programs):
        kind = program_kind(program.kind)
        legalize(program.function)
        frame_name = frame_map_name(program.name, taken)
        taken.add(frame_name)
        selected = FunctionSelector(
            program, index, kind, frame_name, sites, source_lines
        ).select()
        frame = frame_map(frame_name, program.function.frame_size, selected.spill_size)
        maps.append(frame)
        if selected.stack_size > MAX_STACK - 8:  # may_goto keeps its counter on the stack
            raise CodegenError(
                f"program {program.name} needs {selected.stack_size} bytes of stack"
            )
        programs.append(
            CompiledProgram(
                name=program.name,
                index=index,
                kind=kind,
                instructions=selected.instructions,
                stack_size=selected.stack_size,
                frame_map=frame_name,
                frame_size=frame.value_size,
                on_error=program.on_error,
                expected_attach_type=expected_attach_type(kind, program.attach),
                attach=dict(program.attach),
            )
        )
    clashes = taken & {m.name for m in error_channel_maps(0)}
    if clashes:
        raise CodegenError(f"map names {sorted(clashes)} are reserved for the runtime")
    maps += error_channel_maps(len(sites))
    return CompiledModule(module.file, module.source, module.license, maps, programs, sites)


__all__ = [
    "ERRORS_LOST_MAP",
    "ERRORS_MAP",
    "ERROR_RECORD",
    "EXC_COUNT_MAP",
    "PROGRAM_KINDS",
    "CodegenError",
    "CompiledModule",
    "CompiledProgram",
    "ErrorRecord",
    "ExceptionSite",
    "LoadedModule",
    "ProgramKind",
    "VerifierRejectionError",
    "frame_layout",
    "generate",
    "load",
]
