"""Constructors for every eBPF instruction form.

Register operands are :class:`~pykex.bpf.insn.Register` values (``R0`` ... ``R10``); a
plain ``int`` in an operand position is an immediate. Jump targets are a label (``str``,
resolved by :func:`pykex.bpf.encode`) or a raw slot offset (``int``). Access sizes are a
:class:`~pykex.bpf.opcodes.Size` or a byte count (1, 2, 4, 8).

Naming: ``<op>64``/``<op>32`` for ALU operations (``add64(R1, R2)``, ``add32(R1, 5)``),
``j<cond>``/``j<cond>32`` for conditional jumps (``jeq(R0, 0, "out")``), ``ldx``/``ldxs``
(sign-extending)/``st``/``stx`` for memory, ``atomic_*``, ``load_acquire`` and
``store_release`` for atomics, ``ld_*`` for 64-bit loads, ``call_*`` for calls.
"""

from __future__ import annotations

from collections.abc import Callable

from pykex.bpf.helpers import helper_id
from pykex.bpf.insn import Instruction, Register
from pykex.bpf.opcodes import (
    ADDR_SPACE_CAST_OFF,
    LD_IMM64_OPCODE,
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

Operand = Register | int
Target = str | int


def _register(value: object, role: str) -> Register:
    if not isinstance(value, Register):
        raise TypeError(f"{role} must be a register (R0..R10), not {value!r}")
    return value


def _size(size: Size | int) -> Size:
    if isinstance(size, Size):
        return size
    return Size.of_bytes(size)


def _imm32(value: int, wide_ok: bool) -> int:
    """An immediate for a 32-bit field. ``wide_ok``: the operation only uses 32 bits, so
    the unsigned spelling 0x80000000..0xffffffff is the same bit pattern."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"immediate must be an int, not {value!r}")
    if wide_ok and (1 << 31) <= value < (1 << 32):
        return value - (1 << 32)
    if not -(1 << 31) <= value < (1 << 31):
        raise ValueError(
            f"immediate {value} does not fit in a sign-extended 32-bit field; use ld_imm64"
        )
    return value


def _target(target: Target) -> tuple[str | None, int]:
    if isinstance(target, str):
        return target, 0
    if isinstance(target, int) and not isinstance(target, bool):
        return None, target
    raise TypeError(f"jump target must be a label or an offset, not {target!r}")


# -- ALU -----------------------------------------------------------------------------------


def alu(cls: Class, op: AluOp, dst: Register, operand: Operand, off: int = 0) -> Instruction:
    """A two-operand ALU instruction of class ALU or ALU64."""
    dst = _register(dst, "destination")
    if isinstance(operand, Register):
        return Instruction(cls | op | Source.X, dst, operand, off, 0)
    imm = _imm32(operand, wide_ok=cls == Class.ALU)
    return Instruction(cls | op | Source.K, dst, 0, off, imm)


def add64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.ADD, dst, operand)


def sub64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.SUB, dst, operand)


def mul64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.MUL, dst, operand)


def div64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.DIV, dst, operand)


def sdiv64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.DIV, dst, operand, off=1)


def mod64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.MOD, dst, operand)


def smod64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.MOD, dst, operand, off=1)


def or64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.OR, dst, operand)


def and64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.AND, dst, operand)


def xor64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.XOR, dst, operand)


def lsh64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.LSH, dst, operand)


def rsh64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.RSH, dst, operand)


def arsh64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.ARSH, dst, operand)


def mov64(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU64, AluOp.MOV, dst, operand)


def neg64(dst: Register) -> Instruction:
    return Instruction(Class.ALU64 | AluOp.NEG, _register(dst, "destination"))


def add32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.ADD, dst, operand)


def sub32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.SUB, dst, operand)


def mul32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.MUL, dst, operand)


def div32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.DIV, dst, operand)


def sdiv32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.DIV, dst, operand, off=1)


def mod32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.MOD, dst, operand)


def smod32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.MOD, dst, operand, off=1)


def or32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.OR, dst, operand)


def and32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.AND, dst, operand)


def xor32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.XOR, dst, operand)


def lsh32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.LSH, dst, operand)


def rsh32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.RSH, dst, operand)


def arsh32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.ARSH, dst, operand)


def mov32(dst: Register, operand: Operand) -> Instruction:
    return alu(Class.ALU, AluOp.MOV, dst, operand)


def neg32(dst: Register) -> Instruction:
    return Instruction(Class.ALU | AluOp.NEG, _register(dst, "destination"))


def movsx64(dst: Register, src: Register, bits: int) -> Instruction:
    """``dst = (s<bits>)src``, sign-extended to 64 bits; bits is 8, 16 or 32."""
    return alu(Class.ALU64, AluOp.MOV, dst, _register(src, "source"), off=bits)


def movsx32(dst: Register, src: Register, bits: int) -> Instruction:
    """``w_dst = (s<bits>)w_src``, sign-extended to 32 bits; bits is 8 or 16."""
    return alu(Class.ALU, AluOp.MOV, dst, _register(src, "source"), off=bits)


def addr_space_cast(dst: Register, src: Register, dst_space: int, src_space: int) -> Instruction:
    """Arena pointer conversion between address spaces 0 (kernel) and 1 (user)."""
    return Instruction(
        Class.ALU64 | AluOp.MOV | Source.X,
        _register(dst, "destination"),
        _register(src, "source"),
        ADDR_SPACE_CAST_OFF,
        (dst_space << 16) | src_space,
    )


def _end(cls: Class, direction: Source, dst: Register, bits: int) -> Instruction:
    return Instruction(cls | AluOp.END | direction, _register(dst, "destination"), 0, 0, bits)


def le16(dst: Register) -> Instruction:
    return _end(Class.ALU, Source.K, dst, 16)


def le32(dst: Register) -> Instruction:
    return _end(Class.ALU, Source.K, dst, 32)


def le64(dst: Register) -> Instruction:
    return _end(Class.ALU, Source.K, dst, 64)


def be16(dst: Register) -> Instruction:
    return _end(Class.ALU, Source.X, dst, 16)


def be32(dst: Register) -> Instruction:
    return _end(Class.ALU, Source.X, dst, 32)


def be64(dst: Register) -> Instruction:
    return _end(Class.ALU, Source.X, dst, 64)


def bswap16(dst: Register) -> Instruction:
    return _end(Class.ALU64, Source.K, dst, 16)


def bswap32(dst: Register) -> Instruction:
    return _end(Class.ALU64, Source.K, dst, 32)


def bswap64(dst: Register) -> Instruction:
    return _end(Class.ALU64, Source.K, dst, 64)


# -- memory ---------------------------------------------------------------------------------


def ldx(size: Size | int, dst: Register, src: Register, off: int = 0) -> Instruction:
    """``dst = *(u<size> *)(src + off)``, zero-extended."""
    return Instruction(
        Class.LDX | Mode.MEM | _size(size),
        _register(dst, "destination"),
        _register(src, "base"),
        off,
    )


def ldxs(size: Size | int, dst: Register, src: Register, off: int = 0) -> Instruction:
    """``dst = *(s<size> *)(src + off)``, sign-extended (1, 2 or 4 bytes)."""
    return Instruction(
        Class.LDX | Mode.MEMSX | _size(size),
        _register(dst, "destination"),
        _register(src, "base"),
        off,
    )


def st(size: Size | int, dst: Register, off: int, imm: int) -> Instruction:
    """``*(u<size> *)(dst + off) = imm``."""
    return Instruction(
        Class.ST | Mode.MEM | _size(size),
        _register(dst, "base"),
        0,
        off,
        _imm32(imm, wide_ok=_size(size) != Size.DW),
    )


def stx(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    """``*(u<size> *)(dst + off) = src``."""
    return Instruction(
        Class.STX | Mode.MEM | _size(size),
        _register(dst, "base"),
        _register(src, "source"),
        off,
    )


def atomic(op: AtomicOp, size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    """A ``STX | ATOMIC`` instruction; ``dst + off`` is the address, ``src`` the operand."""
    return Instruction(
        Class.STX | Mode.ATOMIC | _size(size),
        _register(dst, "base"),
        _register(src, "source"),
        off,
        AtomicOp(op),
    )


def atomic_add(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    return atomic(AtomicOp.ADD, size, dst, off, src)


def atomic_or(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    return atomic(AtomicOp.OR, size, dst, off, src)


def atomic_and(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    return atomic(AtomicOp.AND, size, dst, off, src)


def atomic_xor(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    return atomic(AtomicOp.XOR, size, dst, off, src)


def atomic_fetch_add(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    """``src = atomic_fetch_add(dst + off, src)``: the old value lands in ``src``."""
    return atomic(AtomicOp.FETCH_ADD, size, dst, off, src)


def atomic_fetch_or(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    return atomic(AtomicOp.FETCH_OR, size, dst, off, src)


def atomic_fetch_and(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    return atomic(AtomicOp.FETCH_AND, size, dst, off, src)


def atomic_fetch_xor(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    return atomic(AtomicOp.FETCH_XOR, size, dst, off, src)


def atomic_xchg(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    return atomic(AtomicOp.XCHG, size, dst, off, src)


def atomic_cmpxchg(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    """Compare ``*(dst + off)`` with R0, store ``src`` if equal; R0 gets the old value."""
    return atomic(AtomicOp.CMPXCHG, size, dst, off, src)


def load_acquire(size: Size | int, dst: Register, src: Register, off: int = 0) -> Instruction:
    """``dst = load_acquire(src + off)``: note the load-like operand order."""
    return Instruction(
        Class.STX | Mode.ATOMIC | _size(size),
        _register(dst, "destination"),
        _register(src, "base"),
        off,
        AtomicOp.LOAD_ACQ,
    )


def store_release(size: Size | int, dst: Register, off: int, src: Register) -> Instruction:
    return atomic(AtomicOp.STORE_REL, size, dst, off, src)


# -- 64-bit immediate loads -----------------------------------------------------------------


def ld_imm64(dst: Register, value: int, src: PseudoSrc = PseudoSrc.NONE) -> Instruction:
    """``dst = value`` for any 64-bit value (two slots)."""
    return Instruction(LD_IMM64_OPCODE, _register(dst, "destination"), src, 0, value)


def ld_map_fd(dst: Register, map_: str | int) -> Instruction:
    """``dst = &map``: by name (the loader fills in the fd) or by a raw fd."""
    if isinstance(map_, str):
        return ld_imm64(dst, 0, PseudoSrc.MAP_FD).replace(map_ref=map_)
    return ld_imm64(dst, map_, PseudoSrc.MAP_FD)


def ld_map_value(dst: Register, map_: str | int, offset: int = 0) -> Instruction:
    """``dst = &map_value[0] + offset`` (array maps, global data)."""
    if not 0 <= offset < (1 << 31):
        raise ValueError(f"map value offset {offset} is out of range")
    name, fd = (map_, 0) if isinstance(map_, str) else (None, map_)
    return ld_imm64(dst, (offset << 32) | (fd & 0xFFFFFFFF), PseudoSrc.MAP_VALUE).replace(
        map_ref=name
    )


def ld_map_idx(dst: Register, index: int) -> Instruction:
    """``dst = &map`` of the map at ``index`` in the program's fd_array."""
    return ld_imm64(dst, index, PseudoSrc.MAP_IDX)


def ld_map_idx_value(dst: Register, index: int, offset: int = 0) -> Instruction:
    return ld_imm64(dst, (offset << 32) | (index & 0xFFFFFFFF), PseudoSrc.MAP_IDX_VALUE)


def ld_ksym(dst: Register, name_or_btf_id: str | int) -> Instruction:
    """``dst = &kernel_variable`` by name (the loader fills in the BTF id) or BTF id."""
    if isinstance(name_or_btf_id, str):
        return ld_imm64(dst, 0, PseudoSrc.BTF_ID).replace(ksym=name_or_btf_id)
    return ld_imm64(dst, name_or_btf_id, PseudoSrc.BTF_ID)


def ld_func(dst: Register, target: Target) -> Instruction:
    """``dst = &subprogram`` (a callback for bpf_loop and friends)."""
    label, offset = _target(target)
    return ld_imm64(dst, offset & 0xFFFFFFFF, PseudoSrc.FUNC).replace(target=label)


# -- legacy packet loads ---------------------------------------------------------------------


def ld_abs(size: Size | int, imm: int) -> Instruction:
    """``r0 = ntoh(*(u<size> *)(skb->data + imm))`` (socket filters only)."""
    return Instruction(Class.LD | Mode.ABS | _size(size), 0, 0, 0, imm)


def ld_ind(size: Size | int, src: Register, imm: int) -> Instruction:
    """``r0 = ntoh(*(u<size> *)(skb->data + src + imm))`` (socket filters only)."""
    return Instruction(Class.LD | Mode.IND | _size(size), 0, _register(src, "index"), 0, imm)


# -- jumps and calls ----------------------------------------------------------------------------


def jump(cls: Class, op: JmpOp, dst: Register, operand: Operand, target: Target) -> Instruction:
    """A conditional jump of class JMP or JMP32."""
    dst = _register(dst, "left operand")
    label, off = _target(target)
    if isinstance(operand, Register):
        return Instruction(cls | op | Source.X, dst, operand, off, 0, target=label)
    imm = _imm32(operand, wide_ok=cls == Class.JMP32)
    return Instruction(cls | op | Source.K, dst, 0, off, imm, target=label)


def _conditional(op: JmpOp, cls: Class) -> Callable[[Register, Operand, Target], Instruction]:
    def make(dst: Register, operand: Operand, target: Target) -> Instruction:
        return jump(cls, op, dst, operand, target)

    width = "32-bit" if cls == Class.JMP32 else "64-bit"
    make.__doc__ = f"Jump to ``target`` if ``dst {op.name[1:].lower()} operand`` ({width})."
    return make


jeq = _conditional(JmpOp.JEQ, Class.JMP)
jne = _conditional(JmpOp.JNE, Class.JMP)
jgt = _conditional(JmpOp.JGT, Class.JMP)
jge = _conditional(JmpOp.JGE, Class.JMP)
jlt = _conditional(JmpOp.JLT, Class.JMP)
jle = _conditional(JmpOp.JLE, Class.JMP)
jsgt = _conditional(JmpOp.JSGT, Class.JMP)
jsge = _conditional(JmpOp.JSGE, Class.JMP)
jslt = _conditional(JmpOp.JSLT, Class.JMP)
jsle = _conditional(JmpOp.JSLE, Class.JMP)
jset = _conditional(JmpOp.JSET, Class.JMP)
jeq32 = _conditional(JmpOp.JEQ, Class.JMP32)
jne32 = _conditional(JmpOp.JNE, Class.JMP32)
jgt32 = _conditional(JmpOp.JGT, Class.JMP32)
jge32 = _conditional(JmpOp.JGE, Class.JMP32)
jlt32 = _conditional(JmpOp.JLT, Class.JMP32)
jle32 = _conditional(JmpOp.JLE, Class.JMP32)
jsgt32 = _conditional(JmpOp.JSGT, Class.JMP32)
jsge32 = _conditional(JmpOp.JSGE, Class.JMP32)
jslt32 = _conditional(JmpOp.JSLT, Class.JMP32)
jsle32 = _conditional(JmpOp.JSLE, Class.JMP32)
jset32 = _conditional(JmpOp.JSET, Class.JMP32)


def ja(target: Target) -> Instruction:
    """Unconditional jump with a 16-bit offset."""
    label, off = _target(target)
    return Instruction(Class.JMP | JmpOp.JA, off=off, target=label)


def gotol(target: Target) -> Instruction:
    """Unconditional jump with a 32-bit offset (``JMP32 | JA``)."""
    label, imm = _target(target)
    return Instruction(Class.JMP32 | JmpOp.JA, imm=imm, target=label)


def may_goto(target: Target) -> Instruction:
    """Jump to ``target`` once the kernel's loop budget is exhausted; fall through before."""
    label, off = _target(target)
    return Instruction(Class.JMP | JmpOp.JCOND, off=off, target=label)


def call_helper(helper: int | str) -> Instruction:
    """Call a helper by id or name (``"bpf_map_lookup_elem"`` or ``"map_lookup_elem"``)."""
    number = helper_id(helper) if isinstance(helper, str) else helper
    return Instruction(Class.JMP | JmpOp.CALL, 0, PseudoCall.HELPER, 0, number)


def call_local(target: Target) -> Instruction:
    """bpf-to-bpf call of the subprogram at ``target``."""
    label, imm = _target(target)
    return Instruction(Class.JMP | JmpOp.CALL, 0, PseudoCall.CALL, 0, imm, target=label)


def call_kfunc(kfunc: str | int, btf_fd_index: int = 0) -> Instruction:
    """Call a kernel function by name (the loader fills in its BTF id) or by BTF id."""
    if isinstance(kfunc, str):
        return Instruction(
            Class.JMP | JmpOp.CALL, 0, PseudoCall.KFUNC_CALL, btf_fd_index, 0, ksym=kfunc
        )
    return Instruction(Class.JMP | JmpOp.CALL, 0, PseudoCall.KFUNC_CALL, btf_fd_index, kfunc)


def exit() -> Instruction:
    """Return R0 to the caller."""
    return Instruction(Class.JMP | JmpOp.EXIT)
