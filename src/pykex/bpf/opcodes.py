"""Numeric constants of the eBPF instruction set.

Values follow the kernel's ``Documentation/bpf/standardization/instruction-set.rst``
and ``include/uapi/linux/bpf.h``. The opcode byte is split three ways:

* ALU/JMP classes: ``op (4 bits) | source (1 bit) | class (3 bits)``
* load/store classes: ``mode (3 bits) | size (2 bits) | class (3 bits)``
"""

from __future__ import annotations

from enum import IntEnum


class Class(IntEnum):
    """Instruction class: the low three bits of the opcode."""

    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class Size(IntEnum):
    """Access size of load/store instructions (opcode bits 3-4)."""

    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18

    @property
    def bytes(self) -> int:
        return SIZE_BYTES[self]

    @classmethod
    def of_bytes(cls, n: int) -> Size:
        for size, width in SIZE_BYTES.items():
            if width == n:
                return size
        raise ValueError(f"no eBPF access size of {n} bytes (use 1, 2, 4 or 8)")


SIZE_BYTES = {Size.B: 1, Size.H: 2, Size.W: 4, Size.DW: 8}


class Mode(IntEnum):
    """Addressing mode of load/store instructions (opcode bits 5-7)."""

    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    MEMSX = 0x80
    ATOMIC = 0xC0


class Source(IntEnum):
    """Operand source bit of ALU and JMP instructions (opcode bit 3)."""

    K = 0x00  # 32-bit immediate
    X = 0x08  # source register


# Byte-swap direction reuses the source bit (BPF_END only).
TO_LE = Source.K
TO_BE = Source.X


class AluOp(IntEnum):
    """Arithmetic operation (opcode bits 4-7 of ALU/ALU64)."""

    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30  # off=1: signed
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90  # off=1: signed
    XOR = 0xA0
    MOV = 0xB0  # off=8/16/32: sign-extending move
    ARSH = 0xC0
    END = 0xD0


class JmpOp(IntEnum):
    """Jump operation (opcode bits 4-7 of JMP/JMP32)."""

    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0
    JCOND = 0xE0  # may_goto (kernel extension, JMP class only)


CONDITIONAL_JUMPS = frozenset(
    {
        JmpOp.JEQ,
        JmpOp.JGT,
        JmpOp.JGE,
        JmpOp.JSET,
        JmpOp.JNE,
        JmpOp.JSGT,
        JmpOp.JSGE,
        JmpOp.JLT,
        JmpOp.JLE,
        JmpOp.JSLT,
        JmpOp.JSLE,
    }
)


class AtomicOp(IntEnum):
    """``imm`` field of ``STX | ATOMIC`` instructions."""

    ADD = 0x00
    OR = 0x40
    AND = 0x50
    XOR = 0xA0
    FETCH_ADD = 0x01
    FETCH_OR = 0x41
    FETCH_AND = 0x51
    FETCH_XOR = 0xA1
    XCHG = 0xE1
    CMPXCHG = 0xF1
    LOAD_ACQ = 0x100
    STORE_REL = 0x110


ATOMIC_FETCH = 0x01  # flag: the old value is returned in the source register
ATOMIC_RMW_OPS = frozenset(
    op for op in AtomicOp if op not in (AtomicOp.LOAD_ACQ, AtomicOp.STORE_REL)
)


class PseudoSrc(IntEnum):
    """``src`` field of a 64-bit immediate load: what the loader or kernel fills in."""

    NONE = 0  # plain 64-bit constant
    MAP_FD = 1  # imm = map fd; the kernel substitutes the map address
    MAP_VALUE = 2  # imm = map fd, next imm = offset into the map value
    BTF_ID = 3  # imm = BTF id of a kernel variable, next imm = BTF object fd
    FUNC = 4  # imm = instruction offset of a subprogram
    MAP_IDX = 5  # imm = index into the program's fd_array
    MAP_IDX_VALUE = 6  # as MAP_IDX, next imm = offset into the map value


class PseudoCall(IntEnum):
    """``src`` field of a call instruction."""

    HELPER = 0  # imm = helper id
    CALL = 1  # imm = instruction offset of a bpf-to-bpf callee
    KFUNC_CALL = 2  # imm = BTF id of a kernel function, off = fd_array index of its BTF


# Aliases with the kernel's spelling, for code transcribed from C.
BPF_PSEUDO_MAP_FD = PseudoSrc.MAP_FD
BPF_PSEUDO_MAP_VALUE = PseudoSrc.MAP_VALUE
BPF_PSEUDO_BTF_ID = PseudoSrc.BTF_ID
BPF_PSEUDO_FUNC = PseudoSrc.FUNC
BPF_PSEUDO_MAP_IDX = PseudoSrc.MAP_IDX
BPF_PSEUDO_MAP_IDX_VALUE = PseudoSrc.MAP_IDX_VALUE
BPF_PSEUDO_CALL = PseudoCall.CALL
BPF_PSEUDO_KFUNC_CALL = PseudoCall.KFUNC_CALL
BPF_MAY_GOTO = 0

# Sign-extension widths accepted in ``off`` of a MOVSX (bits of the source operand).
MOVSX_WIDTHS_ALU64 = (8, 16, 32)
MOVSX_WIDTHS_ALU = (8, 16)
# ``off`` of an ALU64 MOV X that marks an arena address-space cast.
ADDR_SPACE_CAST_OFF = 1


LD_IMM64_OPCODE = Class.LD | Mode.IMM | Size.DW
