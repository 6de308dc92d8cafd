"""Hypothesis strategies that draw every valid eBPF instruction form, field by field.

Written from the ISA tables (not from pykex's validity checks), so they are an
independent statement of what must encode, decode, disassemble and assemble.
"""

from __future__ import annotations

from hypothesis import strategies as st

from pykex.bpf import Instruction

REG = st.integers(0, 10)
S16 = st.integers(-(1 << 15), (1 << 15) - 1)
S32 = st.integers(-(1 << 31), (1 << 31) - 1)
U32 = st.integers(0, (1 << 32) - 1)
U31 = st.integers(0, (1 << 31) - 1)
S64 = st.integers(-(1 << 63), (1 << 63) - 1)

ALU, ALU64, JMP, JMP32 = 0x04, 0x07, 0x05, 0x06
K, X = 0x00, 0x08
SIZES = (0x00, 0x08, 0x10, 0x18)  # W H B DW
PLAIN_ALU_OPS = (0x00, 0x10, 0x20, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0)
DIVMOD_OPS = (0x30, 0x90)
COND_OPS = (0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0)
RMW_ATOMICS = (0x00, 0x40, 0x50, 0xA0, 0x01, 0x41, 0x51, 0xA1, 0xE1, 0xF1)


@st.composite
def alu_insn(draw: st.DrawFn) -> Instruction:
    cls = draw(st.sampled_from((ALU, ALU64)))
    op = draw(st.sampled_from(PLAIN_ALU_OPS + DIVMOD_OPS))
    off = draw(st.sampled_from((0, 1))) if op in DIVMOD_OPS else 0
    if draw(st.booleans()):
        return Instruction(cls | op | X, draw(REG), draw(REG), off, 0)
    return Instruction(cls | op | K, draw(REG), 0, off, draw(S32))


@st.composite
def special_alu_insn(draw: st.DrawFn) -> Instruction:
    kind = draw(st.sampled_from(("neg", "movsx", "cast", "end")))
    cls = draw(st.sampled_from((ALU, ALU64)))
    if kind == "neg":
        return Instruction(cls | 0x80, draw(REG))
    if kind == "movsx":
        widths = (8, 16, 32) if cls == ALU64 else (8, 16)
        return Instruction(cls | 0xB0 | X, draw(REG), draw(REG), draw(st.sampled_from(widths)))
    if kind == "cast":
        return Instruction(ALU64 | 0xB0 | X, draw(REG), draw(REG), 1,
                           draw(st.sampled_from((1, 1 << 16))))
    direction = K if cls == ALU64 else draw(st.sampled_from((K, X)))
    return Instruction(cls | 0xD0 | direction, draw(REG), 0, 0, draw(st.sampled_from((16, 32, 64))))


@st.composite
def jump_insn(draw: st.DrawFn) -> Instruction:
    kind = draw(st.sampled_from(("cond", "ja", "gotol", "may_goto", "exit", "call")))
    if kind == "cond":
        cls = draw(st.sampled_from((JMP, JMP32)))
        op = draw(st.sampled_from(COND_OPS))
        if draw(st.booleans()):
            return Instruction(cls | op | X, draw(REG), draw(REG), draw(S16), 0)
        return Instruction(cls | op | K, draw(REG), 0, draw(S16), draw(S32))
    if kind == "ja":
        return Instruction(JMP, off=draw(S16))
    if kind == "gotol":
        return Instruction(JMP32, imm=draw(S32))
    if kind == "may_goto":
        return Instruction(JMP | 0xE0, off=draw(S16))
    if kind == "exit":
        return Instruction(JMP | 0x90)
    src = draw(st.sampled_from((0, 1, 2)))
    off = draw(st.integers(0, (1 << 15) - 1)) if src == 2 else 0
    return Instruction(JMP | 0x80, 0, src, off, draw(S32))


@st.composite
def memory_insn(draw: st.DrawFn) -> Instruction:
    kind = draw(st.sampled_from(("ldx", "ldxs", "st", "stx", "rmw", "acq", "rel")))
    size = draw(st.sampled_from(SIZES))
    if kind == "ldx":
        return Instruction(0x60 | size | 0x01, draw(REG), draw(REG), draw(S16))
    if kind == "ldxs":
        size = draw(st.sampled_from(SIZES[:3]))
        return Instruction(0x80 | size | 0x01, draw(REG), draw(REG), draw(S16))
    if kind == "st":
        return Instruction(0x60 | size | 0x02, draw(REG), 0, draw(S16), draw(S32))
    if kind == "stx":
        return Instruction(0x60 | size | 0x03, draw(REG), draw(REG), draw(S16))
    if kind == "rmw":
        size = draw(st.sampled_from((0x00, 0x18)))
        return Instruction(0xC0 | size | 0x03, draw(REG), draw(REG), draw(S16),
                           draw(st.sampled_from(RMW_ATOMICS)))
    imm = 0x100 if kind == "acq" else 0x110
    return Instruction(0xC0 | size | 0x03, draw(REG), draw(REG), draw(S16), imm)


@st.composite
def ld_insn(draw: st.DrawFn) -> Instruction:
    kind = draw(st.sampled_from(("imm64", "abs", "ind")))
    if kind == "imm64":
        src = draw(st.integers(0, 6))
        if src == 0:
            value = draw(S64)
        elif src in (1, 4, 5):  # the second imm must stay zero
            value = draw(U32)
        else:
            value = (draw(U31) << 32) | draw(U32)
        return Instruction(0x18, draw(REG), src, 0, value)
    size = draw(st.sampled_from(SIZES[:3]))
    if kind == "abs":
        return Instruction(0x20 | size, imm=draw(S32))
    return Instruction(0x40 | size, 0, draw(REG), 0, draw(S32))


def any_instruction() -> st.SearchStrategy[Instruction]:
    return st.one_of(alu_insn(), special_alu_insn(), jump_insn(), memory_insn(), ld_insn())


# Every opcode the ISA (plus the kernel's may_goto, load-acquire/store-release and
# arena cast) defines, written out from the specification's tables.
ALU_OPCODES = [  # ADD..ARSH with K and X, NEG with K only, END to-LE and to-BE
    0x04, 0x0C, 0x14, 0x1C, 0x24, 0x2C, 0x34, 0x3C, 0x44, 0x4C, 0x54, 0x5C, 0x64, 0x6C,
    0x74, 0x7C, 0x84, 0x94, 0x9C, 0xA4, 0xAC, 0xB4, 0xBC, 0xC4, 0xCC, 0xD4, 0xDC,
]
ALU64_OPCODES = [  # the same, END only unconditional (0xd7)
    0x07, 0x0F, 0x17, 0x1F, 0x27, 0x2F, 0x37, 0x3F, 0x47, 0x4F, 0x57, 0x5F, 0x67, 0x6F,
    0x77, 0x7F, 0x87, 0x97, 0x9F, 0xA7, 0xAF, 0xB7, 0xBF, 0xC7, 0xCF, 0xD7,
]
JMP_OPCODES = [  # JA, conditions with K and X, CALL, EXIT, JCOND (may_goto)
    0x05, 0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45, 0x4D, 0x55, 0x5D, 0x65, 0x6D, 0x75,
    0x7D, 0x85, 0x95, 0xA5, 0xAD, 0xB5, 0xBD, 0xC5, 0xCD, 0xD5, 0xDD, 0xE5,
]
JMP32_OPCODES = [  # gotol and conditions
    0x06, 0x16, 0x1E, 0x26, 0x2E, 0x36, 0x3E, 0x46, 0x4E, 0x56, 0x5E, 0x66, 0x6E, 0x76,
    0x7E, 0xA6, 0xAE, 0xB6, 0xBE, 0xC6, 0xCE, 0xD6, 0xDE,
]
MEMORY_OPCODES = [
    0x18, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50,  # LD: 64-bit immediate, ABS and IND (W H B)
    0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91,  # LDX: MEM W H B DW, MEMSX W H B
    0x62, 0x6A, 0x72, 0x7A,  # ST: MEM
    0x63, 0x6B, 0x73, 0x7B,  # STX: MEM
    0xC3, 0xCB, 0xD3, 0xDB,  # STX: ATOMIC (B and H only for load-acquire/store-release)
]
VALID_OPCODES = frozenset(
    ALU_OPCODES + ALU64_OPCODES + JMP_OPCODES + JMP32_OPCODES + MEMORY_OPCODES
)
