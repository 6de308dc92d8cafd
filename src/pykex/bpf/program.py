"""Encoding whole programs: label resolution, slot offsets, and relocations.

Jump and call offsets count 8-byte *slots*, not instructions: a 64-bit immediate load
occupies two. :func:`encode` assigns each instruction its slot, resolves every symbolic
``target`` to a relative offset (``off`` for jumps and ``may_goto``, ``imm`` for
``gotol``, bpf-to-bpf calls and function-address loads), and lists what the loader
still has to fill in (map fds, kfunc and kernel-variable BTF ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from pykex.bpf.errors import EncodingError
from pykex.bpf.insn import SLOT_SIZE, Instruction, SourceLocation, fits_signed, to_signed
from pykex.bpf.opcodes import PseudoCall, PseudoSrc

MAP_PSEUDO_SRCS = frozenset(
    {PseudoSrc.MAP_FD, PseudoSrc.MAP_VALUE, PseudoSrc.MAP_IDX, PseudoSrc.MAP_IDX_VALUE}
)


class RelocationKind(Enum):
    """What the loader must write into a relocated instruction."""

    MAP = "map"  # 64-bit load: low imm = map fd (or fd_array index, per the insn's src)
    KFUNC = "kfunc"  # call: imm = BTF id of the kernel function, off = its BTF fd index
    KSYM = "ksym"  # 64-bit load (src BTF_ID): imm = BTF id of a kernel variable


@dataclass(frozen=True, slots=True)
class Relocation:
    """A reference the loader resolves: instruction ``index``, its ``slot``, and ``name``."""

    index: int
    slot: int
    kind: RelocationKind
    name: str

    @property
    def byte_offset(self) -> int:
        return self.slot * SLOT_SIZE


@dataclass(frozen=True, slots=True)
class EncodedProgram:
    """The result of :func:`encode`.

    ``code``: little-endian bytecode. ``relocations``: references the loader fills in.
    ``symbols``: label -> slot. ``slots``: instruction index -> slot.
    ``lines``: (slot, source location) for each instruction that has one, in order.
    """

    code: bytes
    relocations: tuple[Relocation, ...]
    symbols: dict[str, int]
    slots: tuple[int, ...]
    lines: tuple[tuple[int, SourceLocation], ...]

    @property
    def slot_count(self) -> int:
        return len(self.code) // SLOT_SIZE


def slot_offsets(instructions: Sequence[Instruction]) -> list[int]:
    """The slot at which each instruction starts."""
    slots = []
    position = 0
    for insn in instructions:
        slots.append(position)
        position += insn.slots
    return slots


def symbol_table(instructions: Sequence[Instruction]) -> dict[str, int]:
    """label -> instruction index; EncodingError on a label defined twice."""
    table: dict[str, int] = {}
    for index, insn in enumerate(instructions):
        if insn.label is None:
            continue
        if insn.label in table:
            raise EncodingError(
                f"label {insn.label!r} already defined at instruction {table[insn.label]}", index
            )
        table[insn.label] = index
    return table


def resolve(instructions: Iterable[Instruction]) -> list[Instruction]:
    """Copies of ``instructions`` with every code target turned into a numeric offset.

    The ``target`` metadata is kept, so the disassembler can still print labels.
    """
    program = list(instructions)
    slots = slot_offsets(program)
    labels = symbol_table(program)
    starts = set(slots)
    total = slots[-1] + program[-1].slots if program else 0
    resolved = []
    for index, insn in enumerate(program):
        if insn.target is not None and not insn.refers_to_code:
            raise EncodingError(
                f"target {insn.target!r} on an instruction that neither jumps nor calls", index
            )
        if insn.refers_to_code:
            if insn.target is not None:
                if insn.target not in labels:
                    raise EncodingError(f"undefined label {insn.target!r}", index)
                delta = slots[labels[insn.target]] - slots[index] - 1
                insn = _with_offset(insn, delta, index)
            destination = slots[index] + 1 + code_offset(insn)
            if destination not in starts or not 0 <= destination < total:
                raise EncodingError(
                    f"offset {code_offset(insn):+d} leads to slot {destination}, which does not"
                    " start an instruction of this program",
                    index,
                )
        resolved.append(insn)
    return resolved


def code_offset(insn: Instruction) -> int:
    """The relative slot offset a jump, call or function load carries numerically."""
    if insn.is_func_ref:
        # Only the low 32 bits carry the offset; the second slot's imm stays 0.
        return to_signed(insn.imm, 32)
    if insn.is_local_call or insn.is_gotol:
        return insn.imm
    return insn.off


def _with_offset(insn: Instruction, delta: int, index: int) -> Instruction:
    if insn.is_func_ref:
        if not fits_signed(delta, 32):
            raise EncodingError(f"function {insn.target!r} is out of range", index)
        return insn.replace(imm=delta & 0xFFFFFFFF)
    if insn.is_local_call or insn.is_gotol:
        if not fits_signed(delta, 32):
            raise EncodingError(f"target {insn.target!r} is out of range", index)
        return insn.replace(imm=delta)
    if not fits_signed(delta, 16):
        raise EncodingError(
            f"jump to {insn.target!r} is out of range: offset {delta} does not fit in"
            " 16 bits (use gotol for long unconditional jumps)",
            index,
        )
    return insn.replace(off=delta)


def relocations(instructions: Sequence[Instruction]) -> list[Relocation]:
    """The map and kernel-symbol references of ``instructions``, in program order."""
    found = []
    slots = slot_offsets(instructions)
    for index, insn in enumerate(instructions):
        slot = slots[index]
        if insn.map_ref is not None:
            if not (insn.is_ld_imm64 and insn.src in MAP_PSEUDO_SRCS):
                raise EncodingError(
                    f"map reference {insn.map_ref!r} needs a 64-bit load of a map", index
                )
            found.append(Relocation(index, slot, RelocationKind.MAP, insn.map_ref))
        if insn.ksym is not None:
            if insn.is_call and insn.src == PseudoCall.KFUNC_CALL:
                kind = RelocationKind.KFUNC
            elif insn.is_ld_imm64 and insn.src == PseudoSrc.BTF_ID:
                kind = RelocationKind.KSYM
            else:
                raise EncodingError(
                    f"kernel symbol {insn.ksym!r} needs a kfunc call or a BTF_ID load", index
                )
            found.append(Relocation(index, slot, kind, insn.ksym))
    return found


def encode(instructions: Iterable[Instruction]) -> EncodedProgram:
    """Check, resolve and encode a program; see :class:`EncodedProgram`."""
    program = resolve(instructions)
    chunks = []
    for index, insn in enumerate(program):
        try:
            chunks.append(insn.encode())
        except EncodingError as error:
            raise EncodingError(str(error), index) from None
    slots = slot_offsets(program)
    labels = symbol_table(program)
    return EncodedProgram(
        code=b"".join(chunks),
        relocations=tuple(relocations(program)),
        symbols={label: slots[index] for label, index in labels.items()},
        slots=tuple(slots),
        lines=tuple(
            (slot, insn.source)
            for slot, insn in zip(slots, program, strict=True)
            if insn.source is not None
        ),
    )
