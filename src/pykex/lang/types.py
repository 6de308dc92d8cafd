"""The types the checker gives to expressions.

Data types (what lives in memory: integers, bools, structs, arrays) wrap
the :mod:`pykex.layout` class they stand for, so sizes, alignments and field
offsets come from one place. The other types describe things only the
compiler handles: map references (optional or checked), maps, the program
context and its packet, types used as values (``u32(x)``, ``read(0, Hdr)``),
and integer literals, which have no type until an operand or a destination
gives them one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pykex import layout
from pykex.ir.nodes import BOOL, I8, I16, I32, I64, U8, U16, U32, U64, Scalar


class Type:
    """Base of the checker's types; ``str()`` is how messages spell them."""

    @property
    def is_data(self) -> bool:
        """Whether values of this type can live in memory (frame, maps, packets)."""
        return False


@dataclass(frozen=True)
class IntT(Type):
    """A fixed-width integer; ``big_endian`` only for memory (``be16`` fields).

    Values in expressions are always in host order: reading a ``be16`` field
    gives a ``u16``, writing one converts back.
    """

    scalar: Scalar
    big_endian: bool = False

    @property
    def is_data(self) -> bool:
        return True

    @property
    def value(self) -> IntT:
        """The type of the value this memory holds."""
        return IntT(self.scalar) if self.big_endian else self

    @property
    def size(self) -> int:
        return self.scalar.size

    @property
    def signed(self) -> bool:
        return self.scalar.signed

    @property
    def layout(self) -> layout.LayoutType:
        if self.big_endian:
            return {16: layout.be16, 32: layout.be32, 64: layout.be64}[self.scalar.bits]
        return _LAYOUT_BY_SCALAR[self.scalar]

    def fits(self, value: int) -> bool:
        return self.scalar.min <= value <= self.scalar.max

    def __str__(self) -> str:
        return f"be{self.scalar.bits}" if self.big_endian else str(self.scalar)


@dataclass(frozen=True)
class BoolT(Type):
    @property
    def is_data(self) -> bool:
        return True

    @property
    def scalar(self) -> Scalar:
        return BOOL

    @property
    def size(self) -> int:
        return 1

    @property
    def value(self) -> BoolT:
        return self

    @property
    def layout(self) -> layout.LayoutType:
        return layout.bool_

    def __str__(self) -> str:
        return "bool"


@dataclass(frozen=True)
class LiteralT(Type):
    """An integer known at compile time that has not been given a type yet."""

    value: int

    def __str__(self) -> str:
        return "int literal"


@dataclass(frozen=True)
class RangeT(Type):
    """An integer computed at run time that is known to lie in ``lo..hi``: the
    counter of a ``for`` over a range with constant bounds, an item of a tuple
    constant read at a run-time index. Like a literal, it has no type until
    its use gives it one (any integer type that holds ``lo..hi``)."""

    lo: int
    hi: int

    def fits(self, ty: IntT) -> bool:
        return ty.fits(self.lo) and ty.fits(self.hi)

    def __str__(self) -> str:
        return f"integer in {self.lo}..{self.hi}"


@dataclass(frozen=True, eq=False)
class StructT(Type):
    layout: layout.StructType

    @property
    def is_data(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return self.layout.__name__

    @property
    def size(self) -> int:
        return self.layout.size

    def field(self, name: str) -> tuple[Type, int] | None:
        try:
            found = self.layout.field(name)
        except KeyError:
            return None
        return from_layout(found.type), found.offset

    def field_names(self) -> list[str]:
        return [f.name for f in self.layout.fields]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StructT) and other.layout is self.layout

    def __hash__(self) -> int:
        return id(self.layout)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ArrayT(Type):
    """``Array[T, N]``; ``Bytes[N]`` is the same array of u8 that user space reads
    as ``bytes`` (``text``) rather than a list of ints."""

    element: Type
    length: int
    text: bool = field(default=False, compare=False)

    @property
    def is_data(self) -> bool:
        return True

    @property
    def size(self) -> int:
        return self.layout.size

    @property
    def layout(self) -> layout.LayoutType:
        if self.text:
            return layout.Bytes[self.length]
        return layout.Array[self.element.layout, self.length]  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return f"Array[{self.element}, {self.length}]"


@dataclass(frozen=True)
class RefT(Type):
    """A reference to a value inside map ``map``; ``optional`` until tested.

    ``reserved`` marks a ring buffer reservation (``with rb.reserve(T) as r``):
    it lives only as long as its ``with`` block.
    """

    target: Type
    map: str
    optional: bool = False
    reserved: bool = False

    @property
    def checked(self) -> RefT:
        return RefT(self.target, self.map, False, self.reserved)

    def __str__(self) -> str:
        if self.reserved:
            return f"reservation of a {self.target} in ring buffer {self.map}"
        inner = f"reference to {self.target} in map {self.map}"
        return f"optional {inner}" if self.optional else inner


@dataclass(frozen=True)
class LockT(Type):
    """A ``SpinLock`` field: 4 bytes the kernel owns, used only by ``with v.lock:``."""

    def __str__(self) -> str:
        return "SpinLock"


@dataclass(frozen=True)
class StringT(Type):
    """A NUL-terminated string somewhere in memory, read only by copying it into a
    ``Bytes[N]`` buffer (N from the buffer's type). ``space`` is ``"user"`` or
    ``"kernel"``: which probe-read helper reaches it."""

    space: str

    def __str__(self) -> str:
        return f"{self.space} string"


@dataclass(frozen=True)
class KernelT(Type):
    """Kernel memory described by vmlinux BTF: a pointer to struct ``name``
    (``task_struct *``) when ``pointer``, else an embedded aggregate whose
    address is known. ``btf`` is the struct's BTF type. Members are read with
    ``bpf_probe_read_kernel``."""

    name: str
    btf: object = field(compare=False, repr=False)
    pointer: bool = True

    def __str__(self) -> str:
        return f"struct {self.name} *" if self.pointer else f"struct {self.name}"


@dataclass(frozen=True)
class ResourceT(Type):
    """What a ``with`` statement acquires before its body runs (a reservation to
    be bound with ``as``, or a lock)."""

    kind: str  # "reservation" or "lock"

    def __str__(self) -> str:
        return "ring buffer reservation" if self.kind == "reservation" else "spin lock"


@dataclass(frozen=True)
class MapT(Type):
    name: str
    kind: str  # prelude class name: HashMap, PerCpuArray, RingBuffer, ...
    key: Type | None
    value: Type | None

    @property
    def is_array(self) -> bool:
        return self.kind in ("ArrayMap", "PerCpuArray", "DevMap")

    @property
    def is_keyed(self) -> bool:
        """Whether code may look values up (rings, perf arrays and stack maps are
        reached only through their own methods)."""
        return self.kind not in ("RingBuffer", "PerfEventArray", "StackTrace", "DevMap",
                                 "ProgramArray")

    def __str__(self) -> str:
        return f"map {self.name} ({self.kind})"


@dataclass(frozen=True)
class ContextT(Type):
    kind: str  # "xdp", "tc", "tracepoint", "raw_tracepoint", "kprobe", ...

    def __str__(self) -> str:
        return CONTEXT_NAMES[self.kind]


CONTEXT_NAMES = {
    "xdp": "XdpContext",
    "tc": "TcContext",
    "tracepoint": "TracepointContext",
    "raw_tracepoint": "RawTracepointContext",
    "kprobe": "ProbeContext",
    "perf_event": "PerfEventContext",
    "socket_filter": "SkbContext",
    "cgroup_skb": "SkbContext",
}


@dataclass(frozen=True)
class PacketT(Type):
    def __str__(self) -> str:
        return "packet"


@dataclass(frozen=True)
class TypeT(Type):
    """A data type used as a value: ``u32`` in ``u32(x)``, ``Hdr`` in ``read(0, Hdr)``."""

    target: Type

    def __str__(self) -> str:
        return f"type {self.target}"


@dataclass(frozen=True)
class NoneT(Type):
    def __str__(self) -> str:
        return "None"


@dataclass(frozen=True)
class StrT(Type):
    value: str

    def __str__(self) -> str:
        return "str"


@dataclass(frozen=True)
class BytesT(Type):
    value: bytes

    def __str__(self) -> str:
        return "bytes"


@dataclass(frozen=True)
class SliceT(Type):
    """A slice (``ctx.packet[a:b]``, ``array[i:j]``): a run of elements compared or
    copied whole. ``length`` is None when only the run time knows it."""

    length: int | None
    element: Type = field(default_factory=lambda: U8_T)
    source: str = "packet"  # "packet" or "array"

    def __str__(self) -> str:
        count = "" if self.length is None else f"{self.length} "
        if self.source == "packet":
            return f"packet slice of {count}bytes"
        return f"slice of {count}{self.element} elements"


@dataclass(frozen=True)
class TupleT(Type):
    """A module-level tuple constant (``WEIGHTS = (1, 1, 2)``). ``element`` is the
    type of a typed tuple (``(u16(80), u16(443))``); None when its items are plain
    integers, which take their type from their use."""

    name: str
    values: tuple[int, ...]
    element: Type | None = None

    def __str__(self) -> str:
        return f"tuple {self.name}"


U8_T, U16_T, U32_T, U64_T = IntT(U8), IntT(U16), IntT(U32), IntT(U64)
I8_T, I16_T, I32_T, I64_T = IntT(I8), IntT(I16), IntT(I32), IntT(I64)
BOOL_T = BoolT()
NONE_T = NoneT()

SCALAR_TYPES: dict[str, Type] = {
    "u8": U8_T,
    "u16": U16_T,
    "u32": U32_T,
    "u64": U64_T,
    "i8": I8_T,
    "i16": I16_T,
    "i32": I32_T,
    "i64": I64_T,
    "be16": IntT(U16, True),
    "be32": IntT(U32, True),
    "be64": IntT(U64, True),
    "bool_": BOOL_T,
}

_LAYOUT_BY_SCALAR = {
    U8: layout.u8,
    U16: layout.u16,
    U32: layout.u32,
    U64: layout.u64,
    I8: layout.i8,
    I16: layout.i16,
    I32: layout.i32,
    I64: layout.i64,
}


def from_layout(lt: layout.LayoutType) -> Type:
    """The checker's type for a :mod:`pykex.layout` type."""
    from pykex.lang.prelude import SpinLock

    if lt is SpinLock:
        return LockT()
    if isinstance(lt, layout.IntType):
        scalar = Scalar(lt.size * 8, lt.signed)
        return IntT(scalar, lt.byteorder == "big" and lt.size > 1)
    if isinstance(lt, layout.BoolType):
        return BOOL_T
    if isinstance(lt, layout.StructType):
        return StructT(lt)
    if isinstance(lt, layout.ArrayType):
        return ArrayT(from_layout(lt.element), lt.length)
    if isinstance(lt, layout.BytesType):
        return ArrayT(U8_T, lt.length, text=True)
    raise TypeError(f"no checker type for layout type {lt!r}")


def is_int(t: Type) -> bool:
    return isinstance(t, IntT | LiteralT | RangeT)


def size_of(t: Type) -> int:
    if isinstance(t, IntT | BoolT | StructT | ArrayT):
        return t.size
    raise TypeError(f"{t} has no size")
