"""Putting a compiled module into the kernel: maps first, then programs.

All or nothing: if any map or program fails, everything created so far is
closed before the error propagates. A verifier rejection is a pykex bug (the
front end accepted the program, so the generated code must verify); it is
reported with the Python line of the instruction the verifier stopped at.
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING

from pykex.bpf.opcodes import PseudoSrc
from pykex.bpf.program import EncodedProgram, RelocationKind
from pykex.ir.nodes import MapDecl
from pykex.kernel import MapRelocation, Program, VerifierError, syscall
from pykex.kernel.cpus import possible_cpu_count
from pykex.kernel.maps import Map, MapSpec, create_map
from pykex.kernel.uapi import MapType

from .debuginfo import map_btf, program_debug_info

if TYPE_CHECKING:
    from . import CompiledModule, CompiledProgram

_LOG_INSTRUCTION = re.compile(r"^(\d+): \(")


class VerifierRejectionError(Exception):
    """The kernel rejected code pykex generated: a bug in pykex, not in the program."""

    def __init__(
        self, program: str, slot: int | None, where: str, verifier: VerifierError
    ) -> None:
        self.program = program
        self.slot = slot  # instruction the verifier stopped at, if the log says
        self.where = where  # its Python source line, or "" when unknown
        self.verifier_error = verifier
        at = f" at instruction {slot}" if slot is not None else ""
        line = f", generated from {where}" if where else ""
        super().__init__(
            f"pykex bug: the kernel's verifier rejected program {program!r}, which pykex "
            f"accepted{at}{line}: {verifier.summary}. Please report it with this module."
        )


class LoadedModule:
    """Maps and programs of one module, live in the kernel. ``close()`` releases all."""

    def __init__(self, compiled: CompiledModule) -> None:
        self.compiled = compiled
        self.maps: dict[str, Map] = {}
        self.programs: dict[str, Program] = {}

    def close(self) -> None:
        for program in self.programs.values():
            program.close()
        for kernel_map in self.maps.values():
            kernel_map.close()
        self.programs.clear()
        self.maps.clear()

    def __enter__(self) -> LoadedModule:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map_fd(self, name: str) -> int:
        return int(self.maps[name].fd)


def load(compiled: CompiledModule) -> LoadedModule:
    """Create every map of ``compiled`` and load every program."""
    loaded = LoadedModule(compiled)
    try:
        for decl in compiled.maps:
            loaded.maps[decl.name] = _create(decl)
        fds = {name: int(m.fd) for name, m in loaded.maps.items()}
        for program in compiled.programs:
            loaded.programs[program.name] = _load_program(compiled, program, fds)
    except BaseException:
        loaded.close()
        raise
    return loaded


def _create(decl: MapDecl) -> Map:
    spec = MapSpec(
        type=MapType[decl.kind],
        key_type=decl.key_type if decl.key_type is not None else decl.key_size,
        value_type=decl.value_type if decl.value_type is not None else decl.value_size,
        # A perf event array has one entry per possible CPU, known only here.
        max_entries=decl.max_entries or possible_cpu_count(),
        name=decl.name,
        flags=decl.flags,
    )
    described = map_btf(decl)
    if described is None:
        created = create_map(spec)
    else:
        # Values holding a spin lock need BTF; the map keeps its own reference.
        with syscall.btf_load(described.btf) as btf_fd:
            spec.btf_fd = int(btf_fd)
            spec.btf_key_type_id = described.key_type_id
            spec.btf_value_type_id = described.value_type_id
            created = create_map(spec)
    if decl.initial is not None:
        try:
            value = decl.initial.ljust(decl.value_size, b"\0")
            syscall.map_update(int(created.fd), struct.pack("<I", 0), value)
        except BaseException:
            created.close()
            raise
    return created


def map_relocations(encoded: EncodedProgram, program: CompiledProgram) -> list[MapRelocation]:
    out = []
    for reloc in encoded.relocations:
        if reloc.kind != RelocationKind.MAP:
            continue
        insn = program.instructions[reloc.index]
        value = insn.src == PseudoSrc.MAP_VALUE
        offset = (insn.imm >> 32) & 0xFFFFFFFF if value else 0
        out.append(MapRelocation(reloc.slot, reloc.name, value=value, offset=offset))
    return out


def _load_program(
    compiled: CompiledModule, program: CompiledProgram, fds: dict[str, int]
) -> Program:
    encoded = program.encode()
    debug = program_debug_info(program, encoded, compiled.file, compiled.source)
    try:
        with syscall.btf_load(debug.btf) as btf_fd:
            return Program.load(
                program.kind.prog_type,
                encoded.code,
                name=program.name,
                license=compiled.license,
                relocations=map_relocations(encoded, program),
                maps=fds,
                expected_attach_type=program.expected_attach_type,
                btf_fd=int(btf_fd),
                func_info=debug.func_info_bytes,
                line_info=debug.line_info_bytes,
            )
    except VerifierError as error:
        slot = stopped_at(error.log)
        raise VerifierRejectionError(
            program.name, slot, source_of_slot(encoded, program, slot), error
        ) from error


def stopped_at(log: str) -> int | None:
    """The slot of the last instruction the verifier's log shows."""
    for line in reversed(log.splitlines()):
        match = _LOG_INSTRUCTION.match(line.strip())
        if match:
            return int(match.group(1))
    return None


def source_of_slot(encoded: EncodedProgram, program: CompiledProgram, slot: int | None) -> str:
    if slot is None or slot not in encoded.slots:
        return ""
    source = program.instructions[encoded.slots.index(slot)].source
    return str(source) if source is not None else ""
