"""Instructions (or bytecode) to text, in the syntax of the kernel's verifier log.

The output is accepted by :func:`pykex.bpf.asm.assemble`, so ``assemble(disassemble(p))``
gives back ``p``. Where the kernel prints a numeric offset or id, a symbolic name is
printed instead when the instruction carries one (a ``target`` label, a ``map_ref``, a
``ksym``); a helper call prints as ``call bpf_map_lookup_elem#1`` as in the kernel log.
Immediates of conditional jumps print in decimal (the kernel prints hex), which reads
better for the sign-extended comparisons of 64-bit jumps.
"""

from __future__ import annotations

from collections.abc import Iterable

from pykex.bpf.helpers import helper_name
from pykex.bpf.insn import Instruction, decode, to_signed
from pykex.bpf.opcodes import (
    ADDR_SPACE_CAST_OFF,
    ATOMIC_FETCH,
    SIZE_BYTES,
    AluOp,
    AtomicOp,
    Class,
    JmpOp,
    Mode,
    PseudoCall,
    PseudoSrc,
    Source,
)
from pykex.bpf.program import code_offset, slot_offsets

ALU_OPERATORS = {
    AluOp.ADD: "+=",
    AluOp.SUB: "-=",
    AluOp.MUL: "*=",
    AluOp.DIV: "/=",
    AluOp.OR: "|=",
    AluOp.AND: "&=",
    AluOp.LSH: "<<=",
    AluOp.RSH: ">>=",
    AluOp.MOD: "%=",
    AluOp.XOR: "^=",
    AluOp.MOV: "=",
    AluOp.ARSH: "s>>=",
}
SIGNED_ALU_OPERATORS = {AluOp.DIV: "s/=", AluOp.MOD: "s%="}
JUMP_OPERATORS = {
    JmpOp.JEQ: "==",
    JmpOp.JGT: ">",
    JmpOp.JGE: ">=",
    JmpOp.JSET: "&",
    JmpOp.JNE: "!=",
    JmpOp.JSGT: "s>",
    JmpOp.JSGE: "s>=",
    JmpOp.JLT: "<",
    JmpOp.JLE: "<=",
    JmpOp.JSLT: "s<",
    JmpOp.JSLE: "s<=",
}
ATOMIC_NAMES = {AtomicOp.ADD: "add", AtomicOp.OR: "or", AtomicOp.AND: "and", AtomicOp.XOR: "xor"}
ATOMIC_OPERATORS = {AtomicOp.ADD: "+=", AtomicOp.OR: "|=", AtomicOp.AND: "&=", AtomicOp.XOR: "^="}


def _mem(kind: str, insn: Instruction, base: int) -> str:
    return f"({kind}{SIZE_BYTES[insn.size] * 8} *)(r{base} {insn.off:+d})"


def _code_ref(insn: Instruction, offset: int) -> str:
    return insn.target if insn.target is not None else f"pc{offset:+d}"


def format_instruction(insn: Instruction) -> str:
    """One instruction as a line of assembler text (no label, no newline)."""
    cls = insn.cls
    if cls in (Class.ALU, Class.ALU64):
        return _format_alu(insn)
    if cls in (Class.JMP, Class.JMP32):
        return _format_jmp(insn)
    if cls == Class.LDX:
        kind = "s" if insn.mode == Mode.MEMSX else "u"
        return f"r{insn.dst} = *{_mem(kind, insn, insn.src)}"
    if cls == Class.ST:
        return f"*{_mem('u', insn, insn.dst)} = {insn.imm}"
    if cls == Class.STX:
        return _format_stx(insn)
    return _format_ld(insn)


def _format_alu(insn: Instruction) -> str:
    reg = "w" if insn.cls == Class.ALU else "r"
    dst = f"{reg}{insn.dst}"
    op = insn.op
    if op == AluOp.END:
        if insn.cls == Class.ALU64:
            return f"r{insn.dst} = bswap{insn.imm} r{insn.dst}"
        direction = "be" if insn.source_bit == Source.X else "le"
        return f"r{insn.dst} = {direction}{insn.imm} r{insn.dst}"
    if op == AluOp.NEG:
        return f"{dst} = -{dst}"
    if insn.source_bit == Source.X:
        src = f"{reg}{insn.src}"
        if op == AluOp.MOV and insn.cls == Class.ALU64 and insn.off == ADDR_SPACE_CAST_OFF:
            return f"{dst} = addr_space_cast({src}, {insn.imm >> 16}, {insn.imm & 0xFFFF})"
        if op == AluOp.MOV and insn.off:
            return f"{dst} = (s{insn.off}){src}"
    else:
        src = str(insn.imm)
    operator = SIGNED_ALU_OPERATORS[op] if insn.off and op in SIGNED_ALU_OPERATORS else None
    return f"{dst} {operator or ALU_OPERATORS[AluOp(op)]} {src}"


def _format_jmp(insn: Instruction) -> str:
    op = insn.op
    if op == JmpOp.EXIT:
        return "exit"
    if op == JmpOp.CALL:
        if insn.src == PseudoCall.CALL:
            return f"call {_code_ref(insn, insn.imm)}"
        if insn.src == PseudoCall.KFUNC_CALL:
            ref = insn.ksym if insn.ksym is not None else str(insn.imm)
            return f"call kfunc:{ref}" + (f"@{insn.off}" if insn.off else "")
        name = helper_name(insn.imm)
        return f"call {name}#{insn.imm}" if name else f"call {insn.imm}"
    if op == JmpOp.JA:
        if insn.cls == Class.JMP32:
            return f"gotol {_code_ref(insn, insn.imm)}"
        return f"goto {_code_ref(insn, insn.off)}"
    if op == JmpOp.JCOND:
        return f"may_goto {_code_ref(insn, insn.off)}"
    reg = "w" if insn.cls == Class.JMP32 else "r"
    right = f"{reg}{insn.src}" if insn.source_bit == Source.X else str(insn.imm)
    operator = JUMP_OPERATORS[JmpOp(op)]
    return f"if {reg}{insn.dst} {operator} {right} goto {_code_ref(insn, insn.off)}"


def _format_stx(insn: Instruction) -> str:
    if insn.mode == Mode.MEM:
        return f"*{_mem('u', insn, insn.dst)} = r{insn.src}"
    op = AtomicOp(insn.imm)
    if op == AtomicOp.LOAD_ACQ:
        return f"r{insn.dst} = load_acquire({_mem('u', insn, insn.src)})"
    address = _mem("u", insn, insn.dst)
    if op == AtomicOp.STORE_REL:
        return f"store_release({address}, r{insn.src})"
    if op in ATOMIC_OPERATORS:
        return f"lock *{address} {ATOMIC_OPERATORS[op]} r{insn.src}"
    width = "64" if SIZE_BYTES[insn.size] == 8 else ""
    if op == AtomicOp.CMPXCHG:
        return f"r0 = atomic{width}_cmpxchg({address}, r0, r{insn.src})"
    if op == AtomicOp.XCHG:
        return f"r{insn.src} = atomic{width}_xchg({address}, r{insn.src})"
    name = ATOMIC_NAMES[AtomicOp(op & ~ATOMIC_FETCH)]
    return f"r{insn.src} = atomic{width}_fetch_{name}({address}, r{insn.src})"


def _format_ld(insn: Instruction) -> str:
    bits = SIZE_BYTES[insn.size] * 8
    if insn.mode == Mode.ABS:
        return f"r0 = *(u{bits} *)skb[{insn.imm}]"
    if insn.mode == Mode.IND:
        sign = "-" if insn.imm < 0 else "+"
        return f"r0 = *(u{bits} *)skb[r{insn.src} {sign} {abs(insn.imm)}]"
    return f"r{insn.dst} = {_format_imm64_value(insn)} ll"


def _format_imm64_value(insn: Instruction) -> str:
    low = insn.imm & 0xFFFFFFFF
    high = (insn.imm >> 32) & 0xFFFFFFFF
    src = insn.src
    if src == PseudoSrc.NONE:
        return f"{insn.imm & 0xFFFFFFFFFFFFFFFF:#x}"
    if src == PseudoSrc.FUNC:
        return f"func[{_code_ref(insn, to_signed(low, 32))}]"
    if src == PseudoSrc.BTF_ID:
        ref = insn.ksym if insn.ksym is not None else f"id:{low}"
        return f"ksym[{ref}" + (f", fd:{high}]" if high else "]")
    kind = {
        PseudoSrc.MAP_FD: "map",
        PseudoSrc.MAP_VALUE: "map_value",
        PseudoSrc.MAP_IDX: "map_idx",
        PseudoSrc.MAP_IDX_VALUE: "map_idx_value",
    }[PseudoSrc(src)]
    if insn.map_ref is not None:
        ref = insn.map_ref
    else:
        ref = f"fd:{low}" if src in (PseudoSrc.MAP_FD, PseudoSrc.MAP_VALUE) else str(low)
    return f"{kind}[{ref}]" + (f"+{high}" if high else "")


def disassemble(
    program: Iterable[Instruction] | bytes | bytearray | memoryview,
    *,
    source: bool = False,
    slots: bool = False,
    symbolize: bool = False,
) -> str:
    """Text of a program, one instruction per line, with ``label:`` lines.

    ``program`` is a sequence of instructions or little-endian bytecode. ``source``
    adds a ``; file:line  text`` comment whenever the source location changes;
    ``slots`` prefixes each instruction with its slot number (``  12: ``), as the kernel
    log does. ``symbolize`` gives numeric jump and call targets generated labels
    (``L<slot>``). All of these forms are accepted by the assembler.
    """
    if isinstance(program, bytes | bytearray | memoryview):
        instructions = decode(program)
    else:
        instructions = list(program)
    if symbolize:
        instructions = _symbolize(instructions)
    width = len(str(max(slot_offsets(instructions), default=0)))
    lines = []
    last_location = None
    for insn, slot in zip(instructions, slot_offsets(instructions), strict=True):
        if insn.label is not None:
            lines.append(f"{insn.label}:")
        if source and insn.source is not None:
            location = (insn.source.file, insn.source.line)
            if location != last_location:
                lines.append(f"; {insn.source}")
                last_location = location
        prefix = f"{slot:>{width}}: " if slots else ""
        lines.append(f"    {prefix}{format_instruction(insn)}")
    return "\n".join(lines) + ("\n" if lines else "")


def _symbolize(instructions: list[Instruction]) -> list[Instruction]:
    """Replace numeric code targets by labels, creating ``L<slot>`` labels as needed."""
    slots = slot_offsets(instructions)
    index_of_slot = {slot: index for index, slot in enumerate(slots)}
    taken = {insn.label for insn in instructions if insn.label is not None}
    labels = [insn.label for insn in instructions]
    targets: dict[int, str] = {}
    for index, insn in enumerate(instructions):
        if not insn.refers_to_code or insn.target is not None:
            continue
        destination = index_of_slot.get(slots[index] + 1 + code_offset(insn))
        if destination is None:
            continue  # leads nowhere valid: keep the number so the problem stays visible
        if labels[destination] is None:
            name = f"L{slots[destination]}"
            while name in taken:
                name += "_"
            taken.add(name)
            labels[destination] = name
        targets[index] = labels[destination]
    return [
        insn.replace(label=labels[index], target=targets.get(index, insn.target))
        for index, insn in enumerate(instructions)
    ]
