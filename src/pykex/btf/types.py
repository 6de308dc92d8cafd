"""BTF types as immutable Python values.

Every BTF kind has one frozen dataclass. References to other types are type
ids (plain ``int``), exactly as in the raw format, so a type value means the
same thing in a :class:`~pykex.btf.reader.Spec` read from the kernel and in a
:class:`~pykex.btf.builder.Builder` that is about to emit it. Two values are
equal when they would encode to the same record; the ``id`` a reader assigns
is carried along but takes no part in equality, which is what lets the
builder deduplicate with a plain dict.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

from pykex.btf.errors import BTFNotFoundError


class Kind(enum.IntEnum):
    """``BTF_KIND_*`` from ``include/uapi/linux/btf.h``."""

    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


KIND_MAX = max(Kind)


class IntEncoding(enum.IntFlag):
    """``BTF_INT_*`` encoding bits of an INT."""

    NONE = 0
    SIGNED = 1
    CHAR = 2
    BOOL = 4


class FuncLinkage(enum.IntEnum):
    """``BTF_FUNC_*``: stored in the vlen field of a FUNC."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


class VarLinkage(enum.IntEnum):
    """``BTF_VAR_*``: the linkage word that follows a VAR."""

    STATIC = 0
    GLOBAL_ALLOCATED = 1
    GLOBAL_EXTERN = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Type:
    """Common part of every BTF type: its name and the id it was read with."""

    kind: ClassVar[Kind]
    name: str = ""
    id: int = field(default=0, compare=False)

    def references(self) -> tuple[int, ...]:
        """Type ids this type refers to (for validation and graph walks)."""
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Void(Type):
    """Type id 0: ``void``, never encoded."""

    kind = Kind.VOID


VOID = Void()


@dataclass(frozen=True, slots=True, kw_only=True)
class Int(Type):
    """An integer. ``offset``/``bits`` describe a bitfield-style INT."""

    kind = Kind.INT
    size: int
    encoding: IntEncoding = IntEncoding.NONE
    offset: int = 0
    bits: int = -1

    def __post_init__(self) -> None:
        if self.bits < 0:
            object.__setattr__(self, "bits", self.size * 8)

    @property
    def signed(self) -> bool:
        return bool(self.encoding & IntEncoding.SIGNED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Array(Type):
    kind = Kind.ARRAY
    element: int
    index: int
    count: int

    def references(self) -> tuple[int, ...]:
        return (self.element, self.index)


@dataclass(frozen=True, slots=True)
class Member:
    """A struct/union member; ``bit_offset`` counts from the start of the aggregate."""

    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Composite(Type):
    """STRUCT or UNION."""

    size: int
    members: tuple[Member, ...] = ()

    def references(self) -> tuple[int, ...]:
        return tuple(m.type for m in self.members)

    @property
    def has_bitfields(self) -> bool:
        """Whether the record needs kind_flag (bitfield sizes stored per member)."""
        return any(m.bitfield_size for m in self.members)


@dataclass(frozen=True, slots=True, kw_only=True)
class Struct(Composite):
    kind = Kind.STRUCT


@dataclass(frozen=True, slots=True, kw_only=True)
class Union(Composite):
    kind = Kind.UNION


@dataclass(frozen=True, slots=True)
class EnumValue:
    name: str
    value: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EnumBase(Type):
    size: int
    values: tuple[EnumValue, ...] = ()
    signed: bool = False

    def value_of(self, enumerator: str) -> int:
        """The value of ``enumerator``; raises BTFNotFoundError when absent."""
        for v in self.values:
            if v.name == enumerator:
                return v.value
        raise BTFNotFoundError(f"enum {self.name or '(anon)'} has no enumerator {enumerator!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Enum(EnumBase):
    """ENUM: 32-bit values; ``signed`` is the kind_flag."""

    kind = Kind.ENUM


@dataclass(frozen=True, slots=True, kw_only=True)
class Enum64(EnumBase):
    """ENUM64: 64-bit values split in two words; ``signed`` is the kind_flag."""

    kind = Kind.ENUM64


@dataclass(frozen=True, slots=True, kw_only=True)
class Fwd(Type):
    """A forward declaration; ``union`` is the kind_flag."""

    kind = Kind.FWD
    union: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference(Type):
    """A type defined by one other type: pointers, typedefs, qualifiers, type tags."""

    target: int

    def references(self) -> tuple[int, ...]:
        return (self.target,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pointer(Reference):
    kind = Kind.PTR


@dataclass(frozen=True, slots=True, kw_only=True)
class Typedef(Reference):
    kind = Kind.TYPEDEF


@dataclass(frozen=True, slots=True, kw_only=True)
class Volatile(Reference):
    kind = Kind.VOLATILE


@dataclass(frozen=True, slots=True, kw_only=True)
class Const(Reference):
    kind = Kind.CONST


@dataclass(frozen=True, slots=True, kw_only=True)
class Restrict(Reference):
    kind = Kind.RESTRICT


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeTag(Reference):
    """TYPE_TAG; ``attribute`` (kind_flag) marks a raw ``__attribute__``."""

    kind = Kind.TYPE_TAG
    attribute: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Func(Type):
    kind = Kind.FUNC
    proto: int
    linkage: FuncLinkage = FuncLinkage.STATIC

    def references(self) -> tuple[int, ...]:
        return (self.proto,)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FuncProto(Type):
    """A function signature; a trailing ``Param("", 0)`` marks ``...``."""

    kind = Kind.FUNC_PROTO
    result: int
    params: tuple[Param, ...] = ()

    def references(self) -> tuple[int, ...]:
        return (self.result, *(p.type for p in self.params))

    @property
    def variadic(self) -> bool:
        return bool(self.params) and self.params[-1] == Param("", 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Var(Type):
    kind = Kind.VAR
    type: int
    linkage: VarLinkage = VarLinkage.STATIC

    def references(self) -> tuple[int, ...]:
        return (self.type,)


@dataclass(frozen=True, slots=True)
class VarSecinfo:
    """One variable placed in a DATASEC: its VAR (or FUNC) id, offset and size."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Datasec(Type):
    kind = Kind.DATASEC
    size: int
    vars: tuple[VarSecinfo, ...] = ()

    def references(self) -> tuple[int, ...]:
        return tuple(v.type for v in self.vars)


@dataclass(frozen=True, slots=True, kw_only=True)
class Float(Type):
    kind = Kind.FLOAT
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclTag(Type):
    """DECL_TAG on a type (``component_index`` -1) or on one member/parameter."""

    kind = Kind.DECL_TAG
    target: int
    component_index: int = -1
    attribute: bool = False

    def references(self) -> tuple[int, ...]:
        return (self.target,)


#: Kinds skipped when resolving a type to what it really is.
TRANSPARENT_KINDS = frozenset(
    {Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG}
)
QUALIFIER_KINDS = frozenset({Kind.VOLATILE, Kind.CONST, Kind.RESTRICT})
