"""Instruction selection: one IR function to eBPF instructions.

Register conventions (see :mod:`.regalloc`): r6 = context, r7 = frame, r0
and r5 = scratch. Every IR instruction expands to a short sequence that reads
all its operands before it writes its result, so a result may reuse the
register of an operand that dies there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pykex.bpf import dsl
from pykex.bpf.insn import FP, R0, R1, R2, R3, R4, R5, R6, R7, Instruction, Register
from pykex.bpf.insn import SourceLocation as Source
from pykex.ir.nodes import (
    AtomicAdd,
    BinOp,
    Branch,
    Call,
    Cast,
    Compare,
    ContextPtr,
    FrameAddr,
    GlobalAddr,
    Instr,
    Jump,
    Load,
    LoopBack,
    MapRef,
    MemCopy,
    MemZero,
    PacketLen,
    PacketPtr,
    ProgramIR,
    Raise,
    Return,
    Scalar,
    Store,
    Temp,
    UnOp,
    Value,
)

from .regalloc import Allocation, FrameSlot, StackSlot, allocate
from .runtime import (
    ERROR_RECORD,
    ERRORS_LOST_MAP,
    ERRORS_MAP,
    EXC_COUNT_MAP,
    MAX_RAISE_ARGS,
    ExceptionSite,
    frame_layout,
)
from .target import ProgramKind

S1, S2 = R0, R5
ARG_REGISTERS = (R1, R2, R3, R4, R5)
MASK64 = (1 << 64) - 1
RAISE_LABEL = "__raise"
MAX_PACKET_OFFSET = 0xFFFF  # the verifier's bound on packet offsets


class CodegenError(Exception):
    """The IR asks for something the backend cannot emit (an IR or front-end bug)."""


def _signed64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


def _fits_imm(value: int) -> bool:
    """Whether a 64-bit constant survives the sign extension of a 32-bit immediate."""
    return -(1 << 31) <= _signed64(value) < (1 << 31)


def _fits_off(value: int) -> bool:
    return -(1 << 15) <= value < (1 << 15)


_JUMPS: dict[tuple[str, bool], Callable[..., Instruction]] = {
    ("eq", False): dsl.jeq, ("eq", True): dsl.jeq,
    ("ne", False): dsl.jne, ("ne", True): dsl.jne,
    ("lt", False): dsl.jlt, ("lt", True): dsl.jslt,
    ("le", False): dsl.jle, ("le", True): dsl.jsle,
    ("gt", False): dsl.jgt, ("gt", True): dsl.jsgt,
    ("ge", False): dsl.jge, ("ge", True): dsl.jsge,
}  # fmt: skip
_MIRROR = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_INVERSE = {"eq": "ne", "ne": "eq", "lt": "ge", "le": "gt", "gt": "le", "ge": "lt"}

_ALU64 = {
    "add": dsl.add64, "sub": dsl.sub64, "mul": dsl.mul64, "and": dsl.and64,
    "or": dsl.or64, "xor": dsl.xor64,
}  # fmt: skip
_ALU32 = {
    "add": dsl.add32, "sub": dsl.sub32, "mul": dsl.mul32, "and": dsl.and32,
    "or": dsl.or32, "xor": dsl.xor32,
}  # fmt: skip
_MAY_OVERFLOW = {"add", "sub", "mul", "shl"}
_COMMUTATIVE = {"add", "mul", "and", "or", "xor"}


def compare_constants(op: str, a: int, b: int, signed: bool) -> bool:
    """``a <op> b`` on 64-bit patterns, as the jump instructions compare."""
    a, b = (_signed64(a), _signed64(b)) if signed else (a & MASK64, b & MASK64)
    return {
        "eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b,
    }[op]  # fmt: skip


@dataclass
class _Label:
    name: str


@dataclass
class SelectedFunction:
    instructions: list[Instruction]
    stack_size: int
    spill_size: int  # bytes of spilled scalars at the start of the frame


class FunctionSelector:
    def __init__(
        self,
        program: ProgramIR,
        program_index: int,
        kind: ProgramKind,
        frame_map: str,
        sites: list[ExceptionSite],
        source_lines: dict[str, list[str]],
    ) -> None:
        self.program = program
        self.function = program.function
        self.program_index = program_index
        self.kind = kind
        self.frame_map = frame_map
        self.sites = sites
        self.source_lines = source_lines
        self.allocation: Allocation = allocate(self.function)
        # Spilled scalars come first in the frame, where 16-bit offsets reach
        # them whatever the size of the locals that follow.
        self.locals_offset = self.allocation.spill_size
        self.scratch_offset = frame_layout(self.function.frame_size, self.locals_offset)[0]
        self.out: list[Instruction | _Label] = []
        self.source: Source | None = None
        self.label_count = 0
        self.raises = False

    # -- output ---------------------------------------------------------------

    def emit(self, *instructions: Instruction) -> None:
        for insn in instructions:
            self.out.append(insn.with_source(self.source) if self.source else insn)

    def label(self, name: str) -> None:
        self.out.append(_Label(name))

    def fresh_label(self) -> str:
        self.label_count += 1
        return f"__L{self.label_count}"

    def _source_of(self, instr: Instr) -> Source | None:
        loc = instr.loc
        if loc is None:
            return None
        lines = self.source_lines.get(loc.file, [])
        text = lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""
        return Source(loc.file, loc.line, loc.col, text)

    # -- operands -------------------------------------------------------------

    def location(self, temp: Temp) -> Register | StackSlot | FrameSlot | None:
        return self.allocation.locations.get(temp)

    def register_of(self, value: Value) -> Register | None:
        if isinstance(value, Temp):
            loc = self.location(value)
            if isinstance(loc, Register):
                return loc
        return None

    def load_constant(self, reg: Register, value: int) -> None:
        value &= MASK64
        if _fits_imm(value):
            self.emit(dsl.mov64(reg, _signed64(value)))
        elif value < (1 << 32):
            self.emit(dsl.mov32(reg, value))
        else:
            self.emit(dsl.ld_imm64(reg, value))

    def materialize(self, value: Value, reg: Register) -> None:
        """Make ``reg`` hold ``value``."""
        if isinstance(value, int):
            self.load_constant(reg, value)
            return
        remat = self.allocation.remat.get(value)
        if remat is not None:
            self.rematerialize(remat, reg)
            return
        loc = self.location(value)
        if loc is None:
            raise CodegenError(f"{value} is used but never defined in {self.function.name}")
        if isinstance(loc, StackSlot):
            self.emit(dsl.ldx(8, reg, FP, -loc.offset))
        elif isinstance(loc, FrameSlot):
            self.emit(dsl.ldx(8, reg, R7, loc.offset))
        elif loc != reg:
            self.emit(dsl.mov64(reg, loc))

    def rematerialize(self, instr: Instr, reg: Register) -> None:
        if isinstance(instr, FrameAddr):
            self.emit(dsl.mov64(reg, R7))
            if self.locals_offset + instr.offset:
                self.emit(dsl.add64(reg, self.locals_offset + instr.offset))
        elif isinstance(instr, ContextPtr):
            self.emit(dsl.mov64(reg, R6))
        elif isinstance(instr, MapRef):
            self.emit(dsl.ld_map_fd(reg, instr.map))
        elif isinstance(instr, GlobalAddr):
            self.emit(dsl.ld_map_value(reg, instr.map, instr.offset))

    def in_register(self, value: Value, scratch: Register) -> Register:
        return self.register_of(value) or self._loaded(value, scratch)

    def _loaded(self, value: Value, scratch: Register) -> Register:
        self.materialize(value, scratch)
        return scratch

    def operand(self, value: Value, scratch: Register, wide: bool = False) -> Register | int:
        """A register, or an immediate when the constant fits (``wide``: 32-bit op)."""
        if isinstance(value, int):
            if _fits_imm(value):
                return _signed64(value)
            if wide:
                return value & 0xFFFFFFFF
        return self.in_register(value, scratch)

    def work_register(self, dst: Temp, *avoid: Register | int | None) -> Register:
        """Where to compute ``dst``: its own register unless an operand still needs it."""
        loc = self.location(dst)
        busy = [r for r in avoid if isinstance(r, Register)]
        if isinstance(loc, Register) and loc not in busy:
            return loc
        return S1

    def write(self, dst: Temp, reg: Register) -> None:
        loc = self.location(dst)
        if isinstance(loc, StackSlot):
            self.emit(dsl.stx(8, FP, -loc.offset, reg))
        elif isinstance(loc, FrameSlot):
            self.emit(dsl.stx(8, R7, loc.offset, reg))
        elif loc is not None and loc != reg:
            self.emit(dsl.mov64(loc, reg))

    def address(self, base: Temp, offset: int) -> tuple[Register, int]:
        """A register and a 16-bit offset that address ``base + offset``."""
        remat = self.allocation.remat.get(base)
        if isinstance(remat, FrameAddr):
            reg, offset = R7, self.locals_offset + remat.offset + offset
        elif isinstance(remat, ContextPtr):
            reg = R6
        else:
            reg = self.in_register(base, S2)
        if not _fits_off(offset):
            if reg != S2:
                self.emit(dsl.mov64(S2, reg))
            self.emit(dsl.add64(S2, offset))
            reg, offset = S2, 0
        return reg, offset

    # -- normalisation ------------------------------------------------------------

    def normalize(self, reg: Register, ty: Scalar) -> None:
        if ty.bits == 64:
            return
        if ty.signed:
            self.emit(dsl.movsx64(reg, reg, ty.bits))
        elif ty.bits == 32:
            self.emit(dsl.mov32(reg, reg))
        else:
            self.emit(dsl.and64(reg, ty.mask))

    # -- the function ---------------------------------------------------------

    def select(self) -> SelectedFunction:
        blocks = self.function.blocks
        for index, block in enumerate(blocks):
            self.label(block.label)
            following = blocks[index + 1].label if index + 1 < len(blocks) else None
            for instr in block.instrs:
                self.source = self._source_of(instr)
                self.select_instr(instr, following)
            self.source = None
        if self.raises:
            self.landing_pad()
        body, self.out = self.out, []
        self.prologue(uses=_registers_used(body))
        instructions = _resolve_labels(self.out + body)
        return SelectedFunction(
            instructions, self.allocation.stack_size, self.allocation.spill_size
        )

    def prologue(self, uses: set[int]) -> None:
        """r6 = ctx; r7 = this CPU's frame, never NULL but the verifier wants
        the check. Code that reads neither register goes without."""
        if R6 in uses or R7 in uses:
            self.emit(dsl.mov64(R6, R1))
        if R7 not in uses:
            return
        self.emit(
            dsl.st(4, FP, -8, 0),
            dsl.ld_map_fd(R1, self.frame_map),
            dsl.mov64(R2, FP),
            dsl.add64(R2, -8),
            dsl.call_helper("bpf_map_lookup_elem"),
            dsl.jne(R0, 0, "__frame_ok"),
            dsl.mov64(R0, self.program.on_error),
            dsl.exit(),
        )
        self.label("__frame_ok")
        self.emit(dsl.mov64(R7, R0))

    def select_instr(self, instr: Instr, following: str | None) -> None:
        method = getattr(self, f"_select_{type(instr).__name__}", None)
        if method is None:
            raise CodegenError(f"no instruction selection for {type(instr).__name__}: {instr}")
        if isinstance(instr, Jump | Branch):
            method(instr, following)
        else:
            method(instr)

    # -- straight-line instructions ----------------------------------------------

    def _select_Assign(self, instr) -> None:
        reg = self.work_register(instr.dst)
        self.materialize(instr.src, reg)
        self.write(instr.dst, reg)

    def _remat_or_write(self, instr: Instr) -> None:
        dst = instr.dst
        if dst in self.allocation.remat:
            return
        reg = self.work_register(dst)
        self.rematerialize(instr, reg)
        self.write(dst, reg)

    _select_FrameAddr = _remat_or_write
    _select_ContextPtr = _remat_or_write
    _select_MapRef = _remat_or_write
    _select_GlobalAddr = _remat_or_write

    def _select_BinOp(self, instr: BinOp) -> None:
        op, ty = instr.op, instr.ty
        if op in ("div", "mod"):
            if ty.signed:
                self.floor_divide(instr)
            else:
                self.unsigned_divide(instr)
            return
        if op in ("shl", "shr"):
            self.shift(instr)
            return
        a, b_value = instr.a, instr.b
        pointers = any(isinstance(v, Temp) and v.pointer for v in (a, b_value))
        if (
            op in _COMMUTATIVE and not pointers and self.register_of(b_value) is not None
            and self.register_of(b_value) == self.register_of(instr.dst)
        ):
            a, b_value = b_value, a  # compute in place, in the register b gives up
        alu32 = ty.bits == 32 and not (isinstance(a, Temp) and a.pointer)
        b = self.operand(b_value, S2, wide=alu32)
        work = self.work_register(instr.dst, b)
        self.materialize(a, work)
        self.emit((_ALU32 if alu32 else _ALU64)[op](work, b))
        # 32-bit operations zero-extend: signed results need their sign back.
        if (alu32 and ty.signed) or (op in _MAY_OVERFLOW and not alu32):
            self.normalize(work, ty)
        self.write(instr.dst, work)

    def divisor(self, value: Value) -> Register | int:
        """The divisor as an immediate when it is a small positive constant."""
        if isinstance(value, int) and 0 < value < (1 << 31):
            return value
        return self.in_register(value, S2)

    def unsigned_divide(self, instr: BinOp) -> None:
        b = self.divisor(instr.b)
        work = self.work_register(instr.dst, b)
        self.materialize(instr.a, work)
        self.emit((dsl.div64 if instr.op == "div" else dsl.mod64)(work, b))
        self.write(instr.dst, work)

    def floor_divide(self, instr: BinOp) -> None:
        """Python's floor ``//`` and ``%`` on sign-extended values: truncating
        smod, then, when the remainder is non-zero and its sign differs from
        the divisor's, ``q - 1`` or ``r + b``. Values fit 64 bits, so only
        i64 ``MIN // -1`` overflows, and it wraps as Python's result does."""
        b = self.divisor(instr.b)
        work = self.work_register(instr.dst, b, self.register_of(instr.a))
        fix, no_fix, done = self.fresh_label(), self.fresh_label(), self.fresh_label()
        self.materialize(instr.a, work)
        self.emit(dsl.smod64(work, b))
        if isinstance(b, Register):
            negative = self.fresh_label()
            self.emit(dsl.jeq(work, 0, no_fix), dsl.jslt(work, 0, negative))
            self.emit(dsl.jsgt(b, 0, no_fix), dsl.ja(fix))
            self.label(negative)
            self.emit(dsl.jslt(b, 0, no_fix))
        else:  # a positive constant: only a negative remainder needs the fix
            self.emit(dsl.jsge(work, 0, no_fix))
        self.label(fix)
        if instr.op == "mod":
            self.emit(dsl.add64(work, b))
            self.label(no_fix)
        else:
            self.materialize(instr.a, work)
            self.emit(dsl.sdiv64(work, b), dsl.sub64(work, 1), dsl.ja(done))
            self.label(no_fix)
            self.materialize(instr.a, work)
            self.emit(dsl.sdiv64(work, b))
        self.label(done)
        self.normalize(work, instr.ty)
        self.write(instr.dst, work)

    def shift(self, instr: BinOp) -> None:
        """Shifts by ``bits`` or more give 0 (the sign for a signed ``shr``); BPF
        would take the amount modulo 64, so large amounts are tested first."""
        ty = instr.ty
        arithmetic = instr.op == "shr" and ty.signed
        make = dsl.lsh64 if instr.op == "shl" else dsl.arsh64 if arithmetic else dsl.rsh64
        if isinstance(instr.b, int):
            amount = instr.b
            work = self.work_register(instr.dst)
            if amount >= ty.bits and not arithmetic:
                self.emit(dsl.mov64(work, 0))
            else:
                self.materialize(instr.a, work)
                if amount:
                    self.emit(make(work, min(amount, 63)))
                if instr.op == "shl":
                    self.normalize(work, ty)
            self.write(instr.dst, work)
            return
        b = self.in_register(instr.b, S2)
        work = self.work_register(instr.dst, b)
        big, done = self.fresh_label(), self.fresh_label()
        self.materialize(instr.a, work)
        self.emit(dsl.jgt(b, 63, big), make(work, b))
        if instr.op == "shl":
            self.normalize(work, ty)
        self.emit(dsl.ja(done))
        self.label(big)
        self.emit(dsl.arsh64(work, 63) if arithmetic else dsl.mov64(work, 0))
        self.label(done)
        self.write(instr.dst, work)

    def _select_UnOp(self, instr: UnOp) -> None:
        work = self.work_register(instr.dst)
        self.materialize(instr.a, work)
        if instr.op == "neg":
            self.emit(dsl.neg64(work))
            self.normalize(work, instr.ty)
        elif instr.op == "invert":
            self.emit(dsl.xor64(work, -1))
            self.normalize(work, instr.ty)
        elif instr.op == "not":
            self.emit(dsl.xor64(work, 1))
        else:
            raise CodegenError(f"unknown unary operation {instr.op!r}")
        self.write(instr.dst, work)

    def _select_Cast(self, instr: Cast) -> None:
        work = self.work_register(instr.dst)
        source = self.register_of(instr.a)
        to = instr.to
        if source is not None and to.bits < 64 and (to.signed or to.bits == 32):
            # One move that also extends: w = w (zero) or movsx (sign).
            self.emit(dsl.movsx64(work, source, to.bits) if to.signed else dsl.mov32(work, source))
        else:
            self.materialize(instr.a, work)
            self.normalize(work, to)
        self.write(instr.dst, work)

    def _compare_operands(
        self, op: str, a: Value, b: Value
    ) -> tuple[str, Register, Register | int]:
        if isinstance(a, int):
            op, a, b = _MIRROR[op], b, a
        left = self.in_register(a, S1)
        right = self.operand(b, S2)
        return op, left, right

    def _select_Compare(self, instr: Compare) -> None:
        work = self.work_register(instr.dst)
        if isinstance(instr.a, int) and isinstance(instr.b, int):
            self.load_constant(work, compare_constants(instr.op, instr.a, instr.b, instr.signed))
            self.write(instr.dst, work)
            return
        op, left, right = self._compare_operands(instr.op, instr.a, instr.b)
        true, done = self.fresh_label(), self.fresh_label()
        # The result is written only after the jump has read both operands.
        self.emit(_JUMPS[op, instr.signed](left, right, true), dsl.mov64(work, 0), dsl.ja(done))
        self.label(true)
        self.emit(dsl.mov64(work, 1))
        self.label(done)
        self.write(instr.dst, work)

    def _select_Load(self, instr: Load) -> None:
        base, offset = self.address(instr.base, instr.offset)
        work = self.work_register(instr.dst)
        ty = instr.ty
        self.emit(dsl.ldx(ty.size, work, base, offset))
        if instr.big_endian and ty.bits > 8:
            self.emit({16: dsl.be16, 32: dsl.be32, 64: dsl.be64}[ty.bits](work))
        if ty.signed:
            self.normalize(work, ty)
        self.write(instr.dst, work)

    def _select_Store(self, instr: Store) -> None:
        base, offset = self.address(instr.base, instr.offset)
        if self.store_immediate(instr, base, offset):
            return
        value = self.in_register(instr.src, S1)
        if instr.big_endian and instr.ty.bits > 8:
            if value != S1:
                self.emit(dsl.mov64(S1, value))
            value = S1
            self.emit({16: dsl.be16, 32: dsl.be32, 64: dsl.be64}[instr.ty.bits](value))
        self.emit(dsl.stx(instr.ty.size, base, offset, value))

    def store_immediate(self, instr: Store, base: Register, offset: int) -> bool:
        """Store a constant without a register (``st``) where the verifier
        allows it: into the frame or a global, not the context."""
        value = instr.src
        if not isinstance(value, int) or instr.big_endian:
            return False
        if not isinstance(self.allocation.remat.get(instr.base), FrameAddr | GlobalAddr):
            return False
        if instr.ty.size == 8:
            if not _fits_imm(value):
                return False
            immediate = _signed64(value)
        else:
            immediate = value & instr.ty.mask
            if immediate >= 1 << 31:
                immediate -= 1 << 32
        self.emit(dsl.st(instr.ty.size, base, offset, immediate))
        return True

    def _select_AtomicAdd(self, instr: AtomicAdd) -> None:
        if instr.ty.bits not in (32, 64):
            raise CodegenError(f"atomic add of {instr.ty} (only 32 and 64 bits exist)")
        base, offset = self.address(instr.base, instr.offset)
        value = self.in_register(instr.src, S1)
        self.emit(dsl.atomic_add(instr.ty.size, base, offset, value))

    def _select_MemCopy(self, instr: MemCopy) -> None:
        position = 0
        for chunk in _chunks(instr.size):
            src, src_off = self.address(instr.src, instr.src_offset + position)
            self.emit(dsl.ldx(chunk, S1, src, src_off))
            dst, dst_off = self.address(instr.dst, instr.dst_offset + position)
            self.emit(dsl.stx(chunk, dst, dst_off, S1))
            position += chunk

    def _select_MemZero(self, instr: MemZero) -> None:
        position = 0
        self.emit(dsl.mov64(S1, 0))
        for chunk in _chunks(instr.size):
            base, offset = self.address(instr.base, instr.offset + position)
            self.emit(dsl.stx(chunk, base, offset, S1))
            position += chunk

    # -- packets ------------------------------------------------------------------

    def _packet_fields(self, instr: Instr):
        if self.kind.packet is None:
            raise CodegenError(f"{self.kind.name} programs have no packet ({instr})")
        return self.kind.packet

    def _select_PacketPtr(self, instr: PacketPtr) -> None:
        fields = self._packet_fields(instr)
        if isinstance(instr.offset, int):
            if instr.offset < 0 or instr.offset + instr.size > MAX_PACKET_OFFSET:
                # The code after it would be unreachable, which the verifier refuses.
                raise CodegenError(f"a packet check that always fails was not legalized: {instr}")
            offset: Register | int = instr.offset
        else:
            offset = self.in_register(instr.offset, S2)
            # A bounded scalar before pointer arithmetic, or the verifier refuses it.
            self.emit(dsl.jgt(offset, MAX_PACKET_OFFSET - instr.size, instr.fail))
        # The pointer is computed in its home register when it has one (the
        # verifier tracks it there, or on the stack), and S1 then takes
        # data_end for the comparison.
        home = self.register_of(instr.dst)
        pointer = home if home is not None and home != offset else S1
        self.emit(dsl.ldx(4, pointer, R6, fields.data))
        if offset != 0:
            self.emit(dsl.add64(pointer, offset))
        self.emit(dsl.mov64(S2, pointer), dsl.add64(S2, instr.size))
        self.write(instr.dst, pointer)
        self.emit(dsl.ldx(4, S1, R6, fields.data_end), dsl.jgt(S2, S1, instr.fail))

    def _select_PacketLen(self, instr: PacketLen) -> None:
        fields = self._packet_fields(instr)
        work = self.work_register(instr.dst)
        self.emit(
            dsl.ldx(4, work, R6, fields.data_end),
            dsl.ldx(4, S2, R6, fields.data),
            dsl.sub64(work, S2),
        )
        self.write(instr.dst, work)

    # -- calls ------------------------------------------------------------------------

    def _select_Call(self, instr: Call) -> None:
        if len(instr.args) > len(ARG_REGISTERS):
            raise CodegenError(f"{instr.helper} takes at most 5 arguments")
        moves: dict[Register, Register] = {}
        others: list[tuple[Value, Register]] = []
        for value, target in zip(instr.args, ARG_REGISTERS, strict=False):
            source = self.register_of(value)
            if source is None:
                others.append((value, target))
            elif source != target:
                moves[target] = source
        self.parallel_move(moves)
        for value, target in others:
            self.materialize(value, target)
        try:
            self.emit(dsl.call_helper(instr.helper))
        except (KeyError, ValueError) as error:
            raise CodegenError(f"unknown helper {instr.helper!r}") from error
        if instr.dst is not None:
            self.write(instr.dst, R0)

    def parallel_move(self, moves: dict[Register, Register]) -> None:
        """Perform ``target = source`` for all pairs at once (r0 breaks cycles)."""
        pending = dict(moves)
        while pending:
            ready = [t for t in pending if t not in pending.values()]
            if ready:
                target = ready[0]
                self.emit(dsl.mov64(target, pending.pop(target)))
                continue
            target, source = next(iter(pending.items()))
            self.emit(dsl.mov64(R0, source))
            pending = {t: (R0 if s == source else s) for t, s in pending.items()}

    # -- terminators ------------------------------------------------------------------

    def _select_Jump(self, instr: Jump, following: str | None) -> None:
        if instr.target != following:
            self.emit(dsl.ja(instr.target))

    def _select_Branch(self, instr: Branch, following: str | None) -> None:
        if isinstance(instr.a, int) and isinstance(instr.b, int):
            taken = compare_constants(instr.op, instr.a, instr.b, instr.signed)
            self._select_Jump(Jump(instr.then if taken else instr.orelse), following)
            return
        op, then, orelse = instr.op, instr.then, instr.orelse
        if then == following:
            op, then, orelse = _INVERSE[op], orelse, then
        op, left, right = self._compare_operands(op, instr.a, instr.b)
        self.emit(_JUMPS[op, instr.signed](left, right, then))
        if orelse != following:
            self.emit(dsl.ja(orelse))

    def _select_LoopBack(self, instr: LoopBack) -> None:
        self.emit(dsl.may_goto(instr.exhausted), dsl.ja(instr.target))

    def _select_Return(self, instr: Return) -> None:
        self.materialize(instr.value, R0)
        self.emit(dsl.exit())

    def _select_Raise(self, instr: Raise) -> None:
        if len(instr.args) > MAX_RAISE_ARGS:
            raise CodegenError(f"an exception shows at most {MAX_RAISE_ARGS} values: {instr}")
        site = ExceptionSite(
            id=len(self.sites),
            program=self.program.name,
            kind=instr.kind,
            message=instr.message,
            locs=tuple(instr.loc.chain()) if instr.loc else (),
        )
        self.sites.append(site)
        for index in range(MAX_RAISE_ARGS):
            value = instr.args[index] if index < len(instr.args) else 0
            if isinstance(value, int) and _fits_imm(value):
                base, offset = self.address_in_scratch(8 + 8 * index)
                self.emit(dsl.st(8, base, offset, _signed64(value)))
                continue
            reg = self.in_register(value, S1)
            base, offset = self.address_in_scratch(8 + 8 * index)
            self.emit(dsl.stx(8, base, offset, reg))
        base, offset = self.address_in_scratch(0)
        self.emit(
            dsl.st(4, base, offset, site.id),
            dsl.st(4, base, offset + 4, self.program_index),
            dsl.ja(RAISE_LABEL),
        )
        self.raises = True

    def address_in_scratch(self, offset: int) -> tuple[Register, int]:
        offset += self.scratch_offset
        if _fits_off(offset + ERROR_RECORD.size):
            return R7, offset
        self.emit(dsl.mov64(S2, R7), dsl.add64(S2, offset))
        return S2, 0

    def landing_pad(self) -> None:
        """Report the record assembled in the frame's scratch area, count it, and
        return the program's ``on_error`` verdict."""
        counted, done = "__raise_counted", "__raise_done"
        self.label(RAISE_LABEL)
        self.emit(
            dsl.ld_map_fd(R1, ERRORS_MAP),
            dsl.mov64(R2, R7),
            dsl.add64(R2, self.scratch_offset),
            dsl.mov64(R3, ERROR_RECORD.size),
            dsl.mov64(R4, 0),
            dsl.call_helper("bpf_ringbuf_output"),
            dsl.jeq(R0, 0, counted),
            dsl.st(4, FP, -8, 0),
            dsl.ld_map_fd(R1, ERRORS_LOST_MAP),
            dsl.mov64(R2, FP),
            dsl.add64(R2, -8),
            dsl.call_helper("bpf_map_lookup_elem"),
            dsl.jeq(R0, 0, counted),
            dsl.ldx(8, R1, R0, 0),
            dsl.add64(R1, 1),
            dsl.stx(8, R0, 0, R1),
        )
        self.label(counted)
        # The record starts with the site id: it is the counter's key.
        self.emit(
            dsl.ld_map_fd(R1, EXC_COUNT_MAP),
            dsl.mov64(R2, R7),
            dsl.add64(R2, self.scratch_offset),
            dsl.call_helper("bpf_map_lookup_elem"),
            dsl.jeq(R0, 0, done),
            dsl.ldx(8, R1, R0, 0),
            dsl.add64(R1, 1),
            dsl.stx(8, R0, 0, R1),
        )
        self.label(done)
        self.emit(dsl.mov64(R0, self.program.on_error), dsl.exit())


def _registers_used(stream: list[Instruction | _Label]) -> set[int]:
    """The registers the instructions name (pseudo sources of calls and
    64-bit loads are small numbers that never reach r6 or r7)."""
    used: set[int] = set()
    for item in stream:
        if isinstance(item, Instruction):
            used |= {item.dst, item.src}
    return used


def _chunks(size: int) -> list[int]:
    out = []
    for chunk in (8, 4, 2, 1):
        while size >= chunk:
            out.append(chunk)
            size -= chunk
    return out


def _resolve_labels(stream: list[Instruction | _Label]) -> list[Instruction]:
    """Attach each label to the instruction after it; labels that share an
    instruction become aliases of the first, and jumps are retargeted."""
    aliases: dict[str, str] = {}
    pending: list[str] = []
    out: list[Instruction] = []
    for item in stream:
        if isinstance(item, _Label):
            pending.append(item.name)
            continue
        if pending:
            for name in pending[1:]:
                aliases[name] = pending[0]
            item = item.with_label(pending[0])
            pending = []
        out.append(item)
    if pending:
        raise CodegenError(f"labels {pending} mark no instruction")
    return [
        insn.replace(target=aliases[insn.target]) if insn.target in aliases else insn
        for insn in out
    ]
