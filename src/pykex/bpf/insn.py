"""The eBPF instruction: fields, symbolic metadata, checks, and byte encoding.

An :class:`Instruction` holds the five fields of the kernel's ``struct bpf_insn`` plus
metadata that never changes its encoding by itself:

* ``label``: a symbol defined at this instruction (jump target, subprogram name);
* ``target``: the label a jump, ``call`` or ``ld_imm64`` of a function refers to; the
  program encoder (:func:`pykex.bpf.program.encode`) turns it into ``off``/``imm``;
* ``map_ref``: the map whose fd (or value address) a 64-bit load needs;
* ``ksym``: the kernel symbol (kfunc or variable) whose BTF id the loader fills in;
* ``source``: the source location the instruction was generated from.

A 64-bit immediate load (``LD | IMM | DW``) is ONE instruction that occupies two 8-byte
slots; its ``imm`` is the whole 64-bit value.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field
from enum import IntEnum

from pykex.bpf.errors import EncodingError
from pykex.bpf.opcodes import (
    ADDR_SPACE_CAST_OFF,
    ATOMIC_RMW_OPS,
    LD_IMM64_OPCODE,
    MOVSX_WIDTHS_ALU,
    MOVSX_WIDTHS_ALU64,
    AluOp,
    AtomicOp,
    Class,
    JmpOp,
    Mode,
    PseudoCall,
    PseudoSrc,
    Size,
    Source,
)

SLOT_SIZE = 8  # bytes per instruction slot
_SLOT = struct.Struct("<BBhi")


class Register(IntEnum):
    """The eleven eBPF registers. R10 is the read-only frame pointer."""

    R0 = 0
    R1 = 1
    R2 = 2
    R3 = 3
    R4 = 4
    R5 = 5
    R6 = 6
    R7 = 7
    R8 = 8
    R9 = 9
    R10 = 10

    def __str__(self) -> str:
        return f"r{self.value}"


R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = Register
FP = R10
MAX_REGISTER = 10


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where an instruction came from: file, 1-based line and column, and the line's text."""

    file: str
    line: int
    column: int = 0
    text: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}  {self.text.strip()}" if self.text.strip() else where


def fits_signed(value: int, bits: int) -> bool:
    return -(1 << (bits - 1)) <= value < (1 << (bits - 1))


def to_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@dataclass(frozen=True, slots=True)
class Instruction:
    """One eBPF instruction (two slots for a 64-bit immediate load).

    Fields are plain integers: ``opcode`` (0-255), ``dst``/``src`` (register numbers or,
    for ``src`` of calls and 64-bit loads, a pseudo value), ``off`` (signed 16 bits) and
    ``imm`` (signed 32 bits; signed 64 bits for a 64-bit load, which also accepts the
    unsigned spelling and stores it signed). Instances are immutable; use
    :meth:`replace` to derive a changed copy. ``source`` is not part of equality.
    """

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    label: str | None = None
    target: str | None = None
    map_ref: str | None = None
    ksym: str | None = None
    source: SourceLocation | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("opcode", "dst", "src", "off", "imm"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Instruction.{name} must be an int, not {value!r}")
            object.__setattr__(self, name, int(value))
        if not 0 <= self.opcode <= 0xFF:
            raise EncodingError(f"opcode {self.opcode:#x} does not fit in 8 bits")
        for name in ("dst", "src"):
            if not 0 <= getattr(self, name) <= 0xF:
                raise EncodingError(f"{name} {getattr(self, name)} does not fit in 4 bits")
        if not fits_signed(self.off, 16):
            raise EncodingError(f"offset {self.off} does not fit in a signed 16-bit field")
        if self.is_ld_imm64:
            if not -(1 << 63) <= self.imm < (1 << 64):
                raise EncodingError(f"immediate {self.imm} does not fit in 64 bits")
            object.__setattr__(self, "imm", to_signed(self.imm, 64))
        elif not fits_signed(self.imm, 32):
            raise EncodingError(
                f"immediate {self.imm} does not fit in a signed 32-bit field"
                " (64-bit constants need ld_imm64)"
            )

    # -- decoded views of the opcode -------------------------------------------------

    @property
    def cls(self) -> Class:
        return Class(self.opcode & 0x07)

    @property
    def is_alu(self) -> bool:
        return self.cls in (Class.ALU, Class.ALU64)

    @property
    def is_jmp(self) -> bool:
        return self.cls in (Class.JMP, Class.JMP32)

    @property
    def is_mem(self) -> bool:
        return self.cls in (Class.LD, Class.LDX, Class.ST, Class.STX)

    @property
    def op(self) -> int:
        """ALU or JMP operation bits (0xf0); meaningless for load/store classes."""
        return self.opcode & 0xF0

    @property
    def source_bit(self) -> Source:
        return Source(self.opcode & 0x08)

    @property
    def mode(self) -> int:
        """Load/store mode bits (0xe0); meaningless for ALU/JMP classes."""
        return self.opcode & 0xE0

    @property
    def size(self) -> Size:
        return Size(self.opcode & 0x18)

    @property
    def is_ld_imm64(self) -> bool:
        return self.opcode == LD_IMM64_OPCODE

    @property
    def slots(self) -> int:
        """How many 8-byte slots the instruction occupies."""
        return 2 if self.is_ld_imm64 else 1

    @property
    def is_call(self) -> bool:
        return self.opcode == Class.JMP | JmpOp.CALL

    @property
    def is_exit(self) -> bool:
        return self.opcode == Class.JMP | JmpOp.EXIT

    @property
    def is_local_call(self) -> bool:
        return self.is_call and self.src == PseudoCall.CALL

    @property
    def is_kfunc_call(self) -> bool:
        return self.is_call and self.src == PseudoCall.KFUNC_CALL

    @property
    def is_helper_call(self) -> bool:
        return self.is_call and self.src == PseudoCall.HELPER

    @property
    def is_gotol(self) -> bool:
        """``JMP32 | JA``: unconditional jump whose offset is in ``imm``."""
        return self.opcode == Class.JMP32 | JmpOp.JA

    @property
    def is_branch(self) -> bool:
        """Any jump whose ``off`` (or ``imm`` for gotol) is an instruction offset."""
        return (
            self.is_jmp
            and self.op not in (JmpOp.CALL, JmpOp.EXIT)
        )

    @property
    def is_conditional_jump(self) -> bool:
        return self.is_branch and self.op not in (JmpOp.JA, JmpOp.JCOND)

    @property
    def is_func_ref(self) -> bool:
        """A 64-bit load of a subprogram's address (callbacks for bpf_loop and friends)."""
        return self.is_ld_imm64 and self.src == PseudoSrc.FUNC

    @property
    def refers_to_code(self) -> bool:
        """Whether ``target`` names an instruction of this program (not an external symbol)."""
        return self.is_branch or self.is_local_call or self.is_func_ref

    # -- construction helpers -----------------------------------------------------------

    def replace(self, **changes: object) -> Instruction:
        return dataclasses.replace(self, **changes)

    def with_label(self, label: str | None) -> Instruction:
        return dataclasses.replace(self, label=label)

    def with_source(self, source: SourceLocation | None) -> Instruction:
        return dataclasses.replace(self, source=source)

    # -- validity and encoding --------------------------------------------------------

    def check(self) -> None:
        """Raise EncodingError unless the fields form an instruction the ISA defines."""
        reason = _invalid_reason(self)
        if reason is not None:
            raise EncodingError(f"{reason} (opcode {self.opcode:#04x})")

    def encode(self) -> bytes:
        """Little-endian bytes of this instruction (16 for a 64-bit load).

        The numeric fields are encoded as they are: a symbolic ``target`` is resolved only
        by :func:`pykex.bpf.encode`, which encodes whole programs.
        """
        self.check()
        regs = (self.src << 4) | self.dst
        if not self.is_ld_imm64:
            return _SLOT.pack(self.opcode, regs, self.off, self.imm)
        low = to_signed(self.imm, 32)
        high = to_signed(self.imm >> 32, 32)
        return _SLOT.pack(self.opcode, regs, self.off, low) + _SLOT.pack(0, 0, 0, high)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> Instruction:
        """Decode one instruction starting at byte ``offset``; EncodingError if invalid."""
        view = memoryview(data)
        if len(view) - offset < SLOT_SIZE:
            raise EncodingError(f"truncated instruction at byte {offset}")
        opcode, regs, off, imm = _SLOT.unpack_from(view, offset)
        if opcode == LD_IMM64_OPCODE:
            if len(view) - offset < 2 * SLOT_SIZE:
                raise EncodingError(f"64-bit load at byte {offset} is missing its second slot")
            opcode2, regs2, off2, imm2 = _SLOT.unpack_from(view, offset + SLOT_SIZE)
            if opcode2 or regs2 or off2:
                raise EncodingError(
                    f"second slot of the 64-bit load at byte {offset} must only hold imm"
                )
            imm = ((imm2 & 0xFFFFFFFF) << 32) | (imm & 0xFFFFFFFF)
        insn = cls(opcode, regs & 0x0F, regs >> 4, off, imm)
        insn.check()
        return insn


def decode(data: bytes | bytearray | memoryview) -> list[Instruction]:
    """Decode a whole program (a multiple of 8 bytes) into instructions."""
    if len(data) % SLOT_SIZE:
        raise EncodingError(f"program length {len(data)} is not a multiple of {SLOT_SIZE}")
    instructions = []
    offset = 0
    while offset < len(data):
        try:
            insn = Instruction.decode(data, offset)
        except EncodingError as error:
            raise EncodingError(f"slot {offset // SLOT_SIZE}: {error}") from None
        instructions.append(insn)
        offset += insn.slots * SLOT_SIZE
    return instructions


# -- the validity rules ------------------------------------------------------------------


def _unused(insn: Instruction, *names: str) -> str | None:
    """Reason why a field that this form does not use is not zero, or None."""
    for name in names:
        if getattr(insn, name):
            return f"field {name} must be 0 for this instruction, not {getattr(insn, name)}"
    return None


def _register_reason(insn: Instruction, *names: str) -> str | None:
    for name in names:
        if getattr(insn, name) > MAX_REGISTER:
            return f"invalid register r{getattr(insn, name)} in {name}"
    return None


def _invalid_reason(insn: Instruction) -> str | None:
    cls = insn.cls
    if cls in (Class.ALU, Class.ALU64):
        return _alu_reason(insn)
    if cls in (Class.JMP, Class.JMP32):
        return _jmp_reason(insn)
    if cls == Class.LD:
        return _ld_reason(insn)
    if cls == Class.LDX:
        if insn.mode == Mode.MEMSX and insn.size == Size.DW:
            return "sign-extending load of 8 bytes is not defined"
        if insn.mode not in (Mode.MEM, Mode.MEMSX):
            return "LDX supports only MEM and MEMSX modes"
        return _unused(insn, "imm") or _register_reason(insn, "dst", "src")
    if cls == Class.ST:
        if insn.mode != Mode.MEM:
            return "ST supports only MEM mode"
        return _unused(insn, "src") or _register_reason(insn, "dst")
    # STX
    if insn.mode == Mode.MEM:
        return _unused(insn, "imm") or _register_reason(insn, "dst", "src")
    if insn.mode != Mode.ATOMIC:
        return "STX supports only MEM and ATOMIC modes"
    if insn.imm not in AtomicOp._value2member_map_:
        return f"unknown atomic operation {insn.imm:#x}"
    if insn.imm in ATOMIC_RMW_OPS and insn.size not in (Size.W, Size.DW):
        return "atomic read-modify-write needs a 4- or 8-byte access"
    return _register_reason(insn, "dst", "src")


def _alu_reason(insn: Instruction) -> str | None:
    op = insn.op
    if op not in AluOp._value2member_map_:
        return f"unknown ALU operation {op:#x}"
    is64 = insn.cls == Class.ALU64
    if op == AluOp.END:
        if is64 and insn.source_bit == Source.X:
            return "64-bit byte swap has no big-endian variant"
        if insn.imm not in (16, 32, 64):
            return f"byte swap width must be 16, 32 or 64, not {insn.imm}"
        return _unused(insn, "src", "off") or _register_reason(insn, "dst")
    if op == AluOp.NEG:
        if insn.source_bit != Source.K:
            return "NEG takes no source operand"
        return _unused(insn, "src", "off", "imm") or _register_reason(insn, "dst")
    if op == AluOp.MOV and insn.source_bit == Source.X:
        if is64 and insn.off == ADDR_SPACE_CAST_OFF:
            if insn.imm not in (1, 1 << 16):
                return "address-space cast supports only casts between spaces 0 and 1"
            return _register_reason(insn, "dst", "src")
        widths = MOVSX_WIDTHS_ALU64 if is64 else MOVSX_WIDTHS_ALU
        if insn.off not in (0, *widths):
            return f"sign-extending move width must be one of {widths}, not {insn.off}"
        return _unused(insn, "imm") or _register_reason(insn, "dst", "src")
    if op in (AluOp.DIV, AluOp.MOD):
        if insn.off not in (0, 1):
            return "division offset must be 0 (unsigned) or 1 (signed)"
    elif insn.off:
        return _unused(insn, "off")
    if insn.source_bit == Source.X:
        return _unused(insn, "imm") or _register_reason(insn, "dst", "src")
    return _unused(insn, "src") or _register_reason(insn, "dst")


def _jmp_reason(insn: Instruction) -> str | None:
    op = insn.op
    if op not in JmpOp._value2member_map_:
        return f"unknown jump operation {op:#x}"
    is32 = insn.cls == Class.JMP32
    if op in (JmpOp.CALL, JmpOp.EXIT, JmpOp.JCOND) and is32:
        return f"{JmpOp(op).name} exists only in the JMP class"
    if op in (JmpOp.JA, JmpOp.CALL, JmpOp.EXIT, JmpOp.JCOND) and insn.source_bit != Source.K:
        return f"{JmpOp(op).name} takes no source register"
    if op == JmpOp.JA:
        return _unused(insn, "dst", "src", "off" if is32 else "imm")
    if op == JmpOp.EXIT:
        return _unused(insn, "dst", "src", "off", "imm")
    if op == JmpOp.JCOND:
        return _unused(insn, "dst", "src", "imm")
    if op == JmpOp.CALL:
        if insn.src not in PseudoCall._value2member_map_:
            return f"unknown call kind src={insn.src}"
        if insn.src == PseudoCall.KFUNC_CALL:
            if insn.off < 0:
                return "kfunc call BTF fd index must not be negative"
            return _unused(insn, "dst")
        return _unused(insn, "dst", "off")
    if insn.source_bit == Source.X:
        return _unused(insn, "imm") or _register_reason(insn, "dst", "src")
    return _unused(insn, "src") or _register_reason(insn, "dst")


# Pseudo loads whose second slot the kernel requires to be zero.
_SINGLE_WORD_PSEUDO_SRCS = frozenset({PseudoSrc.MAP_FD, PseudoSrc.MAP_IDX, PseudoSrc.FUNC})


def _ld_reason(insn: Instruction) -> str | None:
    if insn.mode == Mode.IMM:
        if insn.size != Size.DW:
            return "immediate loads exist only as 64-bit loads"
        if insn.src not in PseudoSrc._value2member_map_:
            return f"unknown 64-bit load kind src={insn.src}"
        if insn.src in _SINGLE_WORD_PSEUDO_SRCS and insn.imm >> 32:
            return f"64-bit load with src={insn.src} must have 0 in its second imm"
        return _unused(insn, "off") or _register_reason(insn, "dst")
    if insn.mode in (Mode.ABS, Mode.IND):
        if insn.size == Size.DW:
            return "legacy packet loads support only 1, 2 and 4 bytes"
        if insn.mode == Mode.ABS:
            return _unused(insn, "dst", "src", "off")
        return _unused(insn, "dst", "off") or _register_reason(insn, "src")
    return "LD supports only IMM, ABS and IND modes"
