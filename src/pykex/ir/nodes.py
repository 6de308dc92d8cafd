"""The intermediate form: functions of basic blocks over virtual registers.

Values are :class:`Temp` (a 64-bit virtual register) or a Python ``int``
(a constant). Scalars held in temps are normalised to their :class:`Scalar`
type: unsigned values zero-extended, signed values sign-extended, ``bool`` as
0 or 1. Every instruction that can produce an out-of-range result (``add``,
``mul``, ``shl``, ...) carries the type it must be normalised to.

Memory is reached only through explicit instructions: frame slots (the
function's locals, see docs/compiler.md), references (pointers the compiler
proved valid: map values, the context, the frame itself) and checked packet
pointers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class Scalar:
    """A fixed-width integer type as the IR sees it."""

    bits: int
    signed: bool

    @property
    def size(self) -> int:
        return self.bits // 8

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else self.mask

    def normalize(self, value: int) -> int:
        """``value`` wrapped to this type, as a Python int in its range."""
        value &= self.mask
        if self.signed and value >> (self.bits - 1):
            value -= 1 << self.bits
        return value

    def __str__(self) -> str:
        return f"{'i' if self.signed else 'u'}{self.bits}"


U8, U16, U32, U64 = (Scalar(b, False) for b in (8, 16, 32, 64))
I8, I16, I32, I64 = (Scalar(b, True) for b in (8, 16, 32, 64))
BOOL = U8


@dataclass(frozen=True)
class Loc:
    """Where an instruction came from, with the call chain of inlined pykex
    functions that led there (outermost caller last)."""

    file: str
    line: int
    col: int
    function: str
    caller: Loc | None = None

    def chain(self) -> list[Loc]:
        """This location and its callers, innermost first."""
        out: list[Loc] = []
        loc: Loc | None = self
        while loc is not None:
            out.append(loc)
            loc = loc.caller
        return out

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(eq=False)
class Temp:
    """A virtual register. ``pointer`` temps hold references, never scalars."""

    id: int
    hint: str = ""
    pointer: bool = False

    def __str__(self) -> str:
        return f"%{self.hint or 't'}{self.id}"

    __repr__ = __str__


Value = Temp | int


def fmt(value: Value) -> str:
    return str(value)


# -- instructions --------------------------------------------------------------


@dataclass(eq=False)
class Instr:
    loc: Loc | None = field(default=None, kw_only=True)

    def uses(self) -> list[Value]:
        return []

    def defs(self) -> list[Temp]:
        dst = getattr(self, "dst", None)
        return [dst] if isinstance(dst, Temp) else []

    # Instructions with effects beyond their result are never removed as dead.
    has_effects: ClassVar[bool] = False


@dataclass(eq=False)
class Assign(Instr):
    dst: Temp
    src: Value

    def uses(self) -> list[Value]:
        return [self.src]

    def __str__(self) -> str:
        return f"{self.dst} = {self.src}"


BINARY_OPS = ("add", "sub", "mul", "div", "mod", "and", "or", "xor", "shl", "shr")


@dataclass(eq=False)
class BinOp(Instr):
    """``dst = a <op> b`` normalised to ``ty``.

    ``div``/``mod`` follow Python (floor) semantics for signed types; the
    divisor is never zero (the front end raises ZeroDivisionError first).
    ``shl``/``shr`` by ``ty.bits`` or more give 0 (or the sign for a signed
    ``shr``); the amount is never negative.
    """

    dst: Temp
    op: str
    a: Value
    b: Value
    ty: Scalar

    def uses(self) -> list[Value]:
        return [self.a, self.b]

    def __str__(self) -> str:
        return f"{self.dst} = {self.op}.{self.ty} {self.a}, {self.b}"


@dataclass(eq=False)
class UnOp(Instr):
    """``neg`` and ``invert`` (normalised to ``ty``), ``not`` of a bool."""

    dst: Temp
    op: str
    a: Value
    ty: Scalar

    def uses(self) -> list[Value]:
        return [self.a]

    def __str__(self) -> str:
        return f"{self.dst} = {self.op}.{self.ty} {self.a}"


@dataclass(eq=False)
class Cast(Instr):
    """Convert between scalar types: truncate, then extend as ``to`` demands."""

    dst: Temp
    a: Value
    to: Scalar

    def uses(self) -> list[Value]:
        return [self.a]

    def __str__(self) -> str:
        return f"{self.dst} = cast.{self.to} {self.a}"


COMPARE_OPS = ("eq", "ne", "lt", "le", "gt", "ge")


@dataclass(eq=False)
class Compare(Instr):
    """``dst = 1 if a <op> b else 0``; ``signed`` picks the comparison."""

    dst: Temp
    op: str
    a: Value
    b: Value
    signed: bool

    def uses(self) -> list[Value]:
        return [self.a, self.b]

    def __str__(self) -> str:
        return f"{self.dst} = cmp.{self.op}{'.s' if self.signed else ''} {self.a}, {self.b}"


@dataclass(eq=False)
class Load(Instr):
    """``dst = *(ty *)(base + offset)``; ``base`` is a pointer temp."""

    dst: Temp
    base: Temp
    offset: int
    ty: Scalar
    big_endian: bool = False

    def uses(self) -> list[Value]:
        return [self.base]

    def __str__(self) -> str:
        order = ".be" if self.big_endian else ""
        return f"{self.dst} = load.{self.ty}{order} [{self.base} + {self.offset}]"


@dataclass(eq=False)
class Store(Instr):
    """``*(ty *)(base + offset) = src``."""

    base: Temp
    offset: int
    src: Value
    ty: Scalar
    big_endian: bool = False
    has_effects: ClassVar[bool] = True

    def uses(self) -> list[Value]:
        return [self.base, self.src]

    def __str__(self) -> str:
        order = ".be" if self.big_endian else ""
        return f"store.{self.ty}{order} [{self.base} + {self.offset}], {self.src}"


@dataclass(eq=False)
class AtomicAdd(Instr):
    """``*(ty *)(base + offset) += src`` atomically across CPUs (32/64 bits)."""

    base: Temp
    offset: int
    src: Value
    ty: Scalar
    has_effects: ClassVar[bool] = True

    def uses(self) -> list[Value]:
        return [self.base, self.src]

    def __str__(self) -> str:
        return f"atomic_add.{self.ty} [{self.base} + {self.offset}], {self.src}"


@dataclass(eq=False)
class FrameAddr(Instr):
    """``dst`` = pointer to byte ``offset`` of the function's frame."""

    dst: Temp
    offset: int

    def __str__(self) -> str:
        return f"{self.dst} = frame + {self.offset}"


@dataclass(eq=False)
class ContextPtr(Instr):
    """``dst`` = the program's context pointer (``struct xdp_md *`` ...)."""

    dst: Temp

    def __str__(self) -> str:
        return f"{self.dst} = ctx"


@dataclass(eq=False)
class GlobalAddr(Instr):
    """``dst`` = pointer to byte ``offset`` of the value of single-element
    array map ``map`` (module globals)."""

    dst: Temp
    map: str
    offset: int = 0

    def __str__(self) -> str:
        return f"{self.dst} = &{self.map} + {self.offset}"


@dataclass(eq=False)
class MapRef(Instr):
    """``dst`` = the map itself, as helpers take it."""

    dst: Temp
    map: str

    def __str__(self) -> str:
        return f"{self.dst} = map {self.map}"


@dataclass(eq=False)
class PacketPtr(Instr):
    """``dst`` = packet data + ``offset``, or jump to ``fail`` unless
    ``[offset, offset + size)`` lies inside the packet."""

    dst: Temp
    offset: Value
    size: int
    fail: str
    has_effects: ClassVar[bool] = True  # it branches

    def uses(self) -> list[Value]:
        return [self.offset]

    def __str__(self) -> str:
        return f"{self.dst} = packet + {self.offset} [{self.size}] else {self.fail}"


@dataclass(eq=False)
class PacketLen(Instr):
    dst: Temp

    def __str__(self) -> str:
        return f"{self.dst} = packet.len"


@dataclass(eq=False)
class MemCopy(Instr):
    """Copy ``size`` bytes from ``src + src_offset`` to ``dst + dst_offset``."""

    dst: Temp
    dst_offset: int
    src: Temp
    src_offset: int
    size: int
    has_effects: ClassVar[bool] = True

    def uses(self) -> list[Value]:
        return [self.dst, self.src]

    def defs(self) -> list[Temp]:
        return []

    def __str__(self) -> str:
        return (
            f"memcpy [{self.dst} + {self.dst_offset}], [{self.src} + {self.src_offset}], "
            f"{self.size}"
        )


@dataclass(eq=False)
class MemZero(Instr):
    base: Temp
    offset: int
    size: int
    has_effects: ClassVar[bool] = True

    def uses(self) -> list[Value]:
        return [self.base]

    def __str__(self) -> str:
        return f"memzero [{self.base} + {self.offset}], {self.size}"


@dataclass(eq=False)
class Call(Instr):
    """``dst = helper(args...)``: a kernel helper by name (``bpf_map_lookup_elem``)."""

    dst: Temp | None
    helper: str
    args: list[Value]
    has_effects: ClassVar[bool] = True

    def uses(self) -> list[Value]:
        return list(self.args)

    def __str__(self) -> str:
        lhs = f"{self.dst} = " if self.dst is not None else ""
        return f"{lhs}call {self.helper}({', '.join(map(str, self.args))})"


# -- terminators ---------------------------------------------------------------


@dataclass(eq=False)
class Jump(Instr):
    target: str

    def __str__(self) -> str:
        return f"jump {self.target}"


@dataclass(eq=False)
class Branch(Instr):
    """``if a <op> b goto then else goto orelse``."""

    op: str
    a: Value
    b: Value
    signed: bool
    then: str
    orelse: str

    def uses(self) -> list[Value]:
        return [self.a, self.b]

    def __str__(self) -> str:
        s = ".s" if self.signed else ""
        return f"branch.{self.op}{s} {self.a}, {self.b} ? {self.then} : {self.orelse}"


@dataclass(eq=False)
class LoopBack(Instr):
    """A loop's back edge: continue at ``target`` while the kernel's loop
    budget lasts (``may_goto``), else go to ``exhausted``."""

    target: str
    exhausted: str

    def __str__(self) -> str:
        return f"loop {self.target} else {self.exhausted}"


@dataclass(eq=False)
class Return(Instr):
    value: Value

    def uses(self) -> list[Value]:
        return [self.value]

    def __str__(self) -> str:
        return f"return {self.value}"


@dataclass(eq=False)
class Raise(Instr):
    """Raise exception ``kind`` (``IndexError``...). ``args`` are the values
    its message shows; ``message`` formats them with ``{}`` placeholders."""

    kind: str
    message: str
    args: list[Value] = field(default_factory=list)

    def uses(self) -> list[Value]:
        return list(self.args)

    def __str__(self) -> str:
        shown = ", ".join(map(str, self.args))
        return f"raise {self.kind} {self.message!r} ({shown})"


TERMINATORS = (Jump, Branch, LoopBack, Return, Raise)


@dataclass(eq=False)
class Block:
    label: str
    instrs: list[Instr] = field(default_factory=list)

    @property
    def terminator(self) -> Instr:
        return self.instrs[-1]

    def successors(self) -> list[str]:
        """Labels control may reach from this block: failed packet checks
        inside it, then its terminator's targets."""
        out = [i.fail for i in self.instrs if isinstance(i, PacketPtr)]
        term = self.terminator
        if isinstance(term, Jump):
            out.append(term.target)
        elif isinstance(term, Branch):
            out += [term.then, term.orelse]
        elif isinstance(term, LoopBack):
            out += [term.target, term.exhausted]
        return out

    def __str__(self) -> str:
        body = "\n".join(f"    {i}" for i in self.instrs)
        return f"{self.label}:\n{body}"


@dataclass(eq=False)
class Function:
    """One program's code. Blocks are in layout order; the first is the entry."""

    name: str
    blocks: list[Block] = field(default_factory=list)
    frame_size: int = 0
    next_temp: int = 0

    def new_temp(self, hint: str = "", pointer: bool = False) -> Temp:
        self.next_temp += 1
        return Temp(self.next_temp, hint, pointer)

    def block(self, label: str) -> Block:
        for b in self.blocks:
            if b.label == label:
                return b
        raise KeyError(label)

    def __str__(self) -> str:
        head = f"function {self.name} (frame {self.frame_size} bytes)"
        return "\n".join([head, *map(str, self.blocks)])


# -- whole extensions ----------------------------------------------------------


@dataclass
class MapDecl:
    """A map the extension declares. ``key_type``/``value_type`` are the
    ``pykex.layout`` types (for BTF and for typed views); sizes are in bytes."""

    name: str
    kind: str  # a pykex.kernel.uapi.MapType member name: "HASH", "PERCPU_ARRAY", ...
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    key_type: object = None
    value_type: object = None
    initial: bytes | None = None  # single-element global data (.data maps)
    loc: Loc | None = None
    # The layout type of the records a RingBuffer or PerfEventArray carries,
    # when the extension sends one kind: user space decodes them with it.
    record_type: object = None


@dataclass
class ProgramIR:
    """One entry point: a decorated function and how it attaches."""

    name: str
    kind: str  # "xdp", "tc", "tracepoint", "raw_tracepoint", ...
    function: Function
    on_error: int
    attach: dict[str, object] = field(default_factory=dict)  # {"tracepoint": "syscalls/..."}
    loc: Loc | None = None


@dataclass
class ModuleIR:
    file: str
    source: str
    maps: list[MapDecl] = field(default_factory=list)
    programs: list[ProgramIR] = field(default_factory=list)
    license: str = "GPL"

    def __str__(self) -> str:
        lines = [f"; module {self.file}"]
        for m in self.maps:
            lines.append(
                f"map {m.name}: {m.kind} key {m.key_size} value {m.value_size} "
                f"max {m.max_entries} flags {m.flags}"
            )
        for p in self.programs:
            lines.append(f"program {p.name}: {p.kind} {p.attach} on_error={p.on_error}")
            lines.append(str(p.function))
        return "\n".join(lines)
