"""Reading raw BTF: the kernel's own (vmlinux and modules) and compiler output.

Layout (``Documentation/bpf/btf.rst``): a header, then a type section of
variable-length records (``struct btf_type`` plus kind-specific data) and a
string section of NUL-terminated names. Type ids are implicit: the n-th record
has id n, id 0 is ``void``. Split BTF (kernel modules) continues the id and
string numbering of its base.

Parsing is two-step for speed: :meth:`Spec.parse` walks the type section once
to record where each record starts (cheap; the whole vmlinux takes a fraction
of a second), and each record is decoded into a :mod:`pykex.btf.types` value
only when asked for, then cached.
"""

from __future__ import annotations

import functools
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pykex.btf.errors import BTFError, BTFFormatError, BTFNotFoundError
from pykex.btf.types import (
    KIND_MAX,
    TRANSPARENT_KINDS,
    VOID,
    Array,
    Composite,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumBase,
    EnumValue,
    Float,
    Func,
    FuncLinkage,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Kind,
    Member,
    Param,
    Pointer,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarLinkage,
    VarSecinfo,
    Volatile,
)

BTF_MAGIC = 0xEB9F
BTF_VERSION = 1
HEADER_SIZE = 24
VMLINUX_BTF_PATH = Path("/sys/kernel/btf/vmlinux")
#: Pointer size on every target BPF runs on; BTF does not record it.
POINTER_SIZE = 8
#: Same bound the kernel uses (MAX_RESOLVE_DEPTH) against typedef/array loops.
MAX_RESOLVE_DEPTH = 32
#: The decl tag this kernel's pahole puts on every function usable as a kfunc.
KFUNC_DECL_TAG = "bpf_kfunc"

# Bytes of kind-specific data after the 12-byte btf_type: (fixed, per vlen entry).
_EXTRA_SIZE: dict[int, tuple[int, int]] = {
    Kind.INT: (4, 0),
    Kind.PTR: (0, 0),
    Kind.ARRAY: (12, 0),
    Kind.STRUCT: (0, 12),
    Kind.UNION: (0, 12),
    Kind.ENUM: (0, 8),
    Kind.FWD: (0, 0),
    Kind.TYPEDEF: (0, 0),
    Kind.VOLATILE: (0, 0),
    Kind.CONST: (0, 0),
    Kind.RESTRICT: (0, 0),
    Kind.FUNC: (0, 0),
    Kind.FUNC_PROTO: (0, 8),
    Kind.VAR: (4, 0),
    Kind.DATASEC: (0, 12),
    Kind.FLOAT: (0, 0),
    Kind.DECL_TAG: (4, 0),
    Kind.TYPE_TAG: (0, 0),
    Kind.ENUM64: (0, 12),
}
_REFERENCE_CLASSES: dict[int, type[Typedef | Volatile | Const | Restrict]] = {
    Kind.TYPEDEF: Typedef,
    Kind.VOLATILE: Volatile,
    Kind.CONST: Const,
    Kind.RESTRICT: Restrict,
}


def detect_byteorder(data: bytes) -> str:
    """``"little"`` or ``"big"`` from the magic number at the start of ``data``."""
    if len(data) < 2:
        raise BTFFormatError("data too short for the BTF magic", 0)
    if int.from_bytes(data[:2], "little") == BTF_MAGIC:
        return "little"
    if int.from_bytes(data[:2], "big") == BTF_MAGIC:
        return "big"
    raise BTFFormatError(f"bad magic {data[:2].hex()} (expected 0xeb9f in either byte order)", 0)


@dataclass(frozen=True, slots=True)
class MemberLayout:
    """Where a (possibly nested) member sits inside the outermost struct."""

    path: str
    type: Type
    bit_offset: int
    bitfield_size: int
    size: int

    @property
    def byte_offset(self) -> int:
        return self.bit_offset // 8


class Spec:
    """All types of one BTF blob, addressed by id and by name.

    Build one with :meth:`parse`, :func:`load_vmlinux` or
    :func:`load_kernel_module`. For split BTF, ids and string offsets below
    the split's first ones are answered by ``base``.
    """

    def __init__(self, data: bytes, base: Spec | None = None) -> None:
        self._data = bytes(data)
        self.base = base
        self.byteorder = detect_byteorder(self._data)
        order = "<" if self.byteorder == "little" else ">"
        self._u32x3 = struct.Struct(order + "III")
        self._u32x2 = struct.Struct(order + "II")
        self._i32x2 = struct.Struct(order + "Ii")
        self._u32 = struct.Struct(order + "I")
        self._i32 = struct.Struct(order + "i")
        self.first_id = len(base) if base is not None else 1
        self.first_string = base.string_end if base is not None else 0
        self._parse_header()
        self._offsets = array("L")
        self._kinds = bytearray()
        self._name_offs = array("L")
        self._scan_types()
        self._types: list[Type | None] = [None] * len(self._offsets)
        self._strings: dict[int, str] = {}
        self._names: dict[str, list[int]] | None = None
        self._kfuncs: dict[str, int] | None = None
        self._enumerators: dict[str, list[int]] | None = None

    @classmethod
    def parse(cls, data: bytes, base: Spec | None = None) -> Spec:
        """Parse raw BTF (``.BTF`` section or ``/sys/kernel/btf/*`` contents)."""
        return cls(data, base)

    # -- raw layout ---------------------------------------------------------------------------

    def _parse_header(self) -> None:
        data = self._data
        if len(data) < HEADER_SIZE:
            raise BTFFormatError(f"data of {len(data)} bytes is shorter than the BTF header", 0)
        order = "<" if self.byteorder == "little" else ">"
        (_, version, self.flags, hdr_len, type_off, type_len, str_off, str_len) = (
            struct.unpack_from(order + "HBBIIIII", data, 0)
        )
        if version != BTF_VERSION:
            raise BTFFormatError(f"unsupported BTF version {version}", 2)
        if hdr_len < HEADER_SIZE or hdr_len > len(data):
            raise BTFFormatError(f"bad header length {hdr_len}", 4)
        body = len(data) - hdr_len
        if type_off % 4:
            raise BTFFormatError(f"type section offset {type_off} is not 4-byte aligned", 8)
        if type_off + type_len > body:
            raise BTFFormatError("type section runs past the end of the data", 8)
        if str_off + str_len > body:
            raise BTFFormatError("string section runs past the end of the data", 16)
        if type_off < str_off + str_len and str_off < type_off + type_len:
            raise BTFFormatError("type and string sections overlap", 8)
        if self.base is None and (str_len == 0 or data[hdr_len + str_off] != 0):
            raise BTFFormatError(
                "string section must start with an empty string", hdr_len + str_off
            )
        if str_len and data[hdr_len + str_off + str_len - 1] != 0:
            raise BTFFormatError(
                "string section is not NUL-terminated", hdr_len + str_off + str_len
            )
        self._type_start = hdr_len + type_off
        self._type_end = self._type_start + type_len
        self._str_start = hdr_len + str_off
        self._str_end = self._str_start + str_len
        self.string_end = self.first_string + str_len

    def _scan_types(self) -> None:
        data, unpack = self._data, self._u32x3.unpack_from
        offsets, kinds, name_offs = self._offsets, self._kinds, self._name_offs
        extra = [(0, 0)] * (KIND_MAX + 1)
        for kind, size in _EXTRA_SIZE.items():
            extra[kind] = size
        pos, end = self._type_start, self._type_end
        while pos < end:
            if pos + 12 > end:
                raise BTFFormatError("truncated type record", pos)
            name_off, info, _ = unpack(data, pos)
            kind = (info >> 24) & 0x1F
            if kind == 0 or kind > KIND_MAX:
                raise BTFFormatError(f"unknown type kind {kind}", pos)
            fixed, per_entry = extra[kind]
            offsets.append(pos)
            kinds.append(kind)
            name_offs.append(name_off)
            pos += 12 + fixed + per_entry * (info & 0xFFFF)
        if pos != end:
            raise BTFFormatError("type record runs past the end of the type section", offsets[-1])

    # -- strings ------------------------------------------------------------------------------

    def string_at(self, offset: int, where: int = 0) -> str:
        """The NUL-terminated string at ``offset`` of the string section.

        ``where`` is the byte position reported if the offset is invalid.
        """
        if offset < self.first_string:
            assert self.base is not None
            return self.base.string_at(offset, where)
        cached = self._strings.get(offset)
        if cached is not None:
            return cached
        start = self._str_start + offset - self.first_string
        if start >= self._str_end:
            raise BTFFormatError(f"string offset {offset} is outside the string section", where)
        stop = self._data.find(b"\0", start, self._str_end)
        if stop < 0:
            raise BTFFormatError(f"string at offset {offset} is not NUL-terminated", where)
        text = self._data[start:stop].decode("utf-8", "surrogateescape")
        self._strings[offset] = text
        return text

    # -- types by id --------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of type ids, counting ``void`` and any base types."""
        return self.first_id + len(self._offsets)

    def type_by_id(self, type_id: int) -> Type:
        """The type with id ``type_id`` (0 is ``void``)."""
        if type_id == 0:
            return VOID
        index = type_id - self.first_id
        if index < 0:
            if self.base is None:
                raise BTFNotFoundError(f"no type with id {type_id}")
            return self.base.type_by_id(type_id)
        if index >= len(self._types):
            raise BTFNotFoundError(f"no type with id {type_id} (last id is {len(self) - 1})")
        decoded = self._types[index]
        if decoded is None:
            decoded = self._decode(index)
            self._types[index] = decoded
        return decoded

    def kind_of(self, type_id: int) -> Kind:
        """The kind of ``type_id`` without decoding the record."""
        if type_id == 0:
            return Kind.VOID
        index = type_id - self.first_id
        if index < 0 and self.base is not None:
            return self.base.kind_of(type_id)
        if not 0 <= index < len(self._kinds):
            raise BTFNotFoundError(f"no type with id {type_id}")
        return Kind(self._kinds[index])

    def types(self, *, include_base: bool = True) -> Iterator[Type]:
        """Every type in id order (``void`` excluded); with the base's first for split BTF."""
        if include_base and self.base is not None:
            yield from self.base.types()
        for type_id in range(self.first_id, len(self)):
            yield self.type_by_id(type_id)

    def _decode(self, index: int) -> Type:
        data = self._data
        pos = self._offsets[index]
        type_id = self.first_id + index
        name_off, info, size_or_type = self._u32x3.unpack_from(data, pos)
        kind = info >> 24 & 0x1F
        vlen = info & 0xFFFF
        kind_flag = bool(info >> 31)
        name = self.string_at(name_off, pos)
        extra = pos + 12
        decoded: Type
        if kind == Kind.INT:
            (word,) = self._u32.unpack_from(data, extra)
            decoded = Int(
                id=type_id,
                name=name,
                size=size_or_type,
                encoding=IntEncoding(word >> 24 & 0x0F),
                offset=word >> 16 & 0xFF,
                bits=word & 0xFF,
            )
        elif kind == Kind.PTR:
            decoded = Pointer(id=type_id, name=name, target=size_or_type)
        elif kind == Kind.ARRAY:
            element, index_type, count = self._u32x3.unpack_from(data, extra)
            decoded = Array(id=type_id, name=name, element=element, index=index_type, count=count)
        elif kind in (Kind.STRUCT, Kind.UNION):
            members = []
            for member_name, member_type, offset in self._u32x3.iter_unpack(
                data[extra : extra + 12 * vlen]
            ):
                if kind_flag:
                    bit_offset, bitfield_size = offset & 0xFFFFFF, offset >> 24
                else:
                    bit_offset, bitfield_size = offset, 0
                members.append(
                    Member(self.string_at(member_name, pos), member_type, bit_offset, bitfield_size)
                )
            cls = Struct if kind == Kind.STRUCT else Union
            decoded = cls(id=type_id, name=name, size=size_or_type, members=tuple(members))
        elif kind == Kind.ENUM:
            layout = self._i32x2 if kind_flag else self._u32x2
            values = tuple(
                EnumValue(self.string_at(value_name, pos), value)
                for value_name, value in layout.iter_unpack(data[extra : extra + 8 * vlen])
            )
            decoded = Enum(
                id=type_id, name=name, size=size_or_type, values=values, signed=kind_flag
            )
        elif kind == Kind.ENUM64:
            values64 = []
            for value_name, low, high in self._u32x3.iter_unpack(data[extra : extra + 12 * vlen]):
                value = high << 32 | low
                if kind_flag and value >= 1 << 63:
                    value -= 1 << 64
                values64.append(EnumValue(self.string_at(value_name, pos), value))
            decoded = Enum64(
                id=type_id,
                name=name,
                size=size_or_type,
                values=tuple(values64),
                signed=kind_flag,
            )
        elif kind == Kind.FWD:
            decoded = Fwd(id=type_id, name=name, union=kind_flag)
        elif kind in _REFERENCE_CLASSES:
            decoded = _REFERENCE_CLASSES[kind](id=type_id, name=name, target=size_or_type)
        elif kind == Kind.TYPE_TAG:
            decoded = TypeTag(id=type_id, name=name, target=size_or_type, attribute=kind_flag)
        elif kind == Kind.FUNC:
            if vlen > max(FuncLinkage):
                raise BTFFormatError(f"FUNC {name!r} has unknown linkage {vlen}", pos)
            decoded = Func(id=type_id, name=name, proto=size_or_type, linkage=FuncLinkage(vlen))
        elif kind == Kind.FUNC_PROTO:
            params = tuple(
                Param(self.string_at(param_name, pos), param_type)
                for param_name, param_type in self._u32x2.iter_unpack(
                    data[extra : extra + 8 * vlen]
                )
            )
            decoded = FuncProto(id=type_id, name=name, result=size_or_type, params=params)
        elif kind == Kind.VAR:
            (linkage,) = self._u32.unpack_from(data, extra)
            if linkage > max(VarLinkage):
                raise BTFFormatError(f"VAR {name!r} has unknown linkage {linkage}", pos)
            decoded = Var(id=type_id, name=name, type=size_or_type, linkage=VarLinkage(linkage))
        elif kind == Kind.DATASEC:
            secinfos = tuple(
                VarSecinfo(*entry)
                for entry in self._u32x3.iter_unpack(data[extra : extra + 12 * vlen])
            )
            decoded = Datasec(id=type_id, name=name, size=size_or_type, vars=secinfos)
        elif kind == Kind.FLOAT:
            decoded = Float(id=type_id, name=name, size=size_or_type)
        else:  # Kind.DECL_TAG; _scan_types rejected every other value
            (component,) = self._i32.unpack_from(data, extra)
            decoded = DeclTag(
                id=type_id,
                name=name,
                target=size_or_type,
                component_index=component,
                attribute=kind_flag,
            )
        total = len(self)
        for referenced in decoded.references():
            if referenced >= total:
                raise BTFFormatError(
                    f"{Kind(kind).name} {name!r} (id {type_id}) refers to missing type id"
                    f" {referenced}",
                    pos,
                )
        return decoded

    # -- types by name ------------------------------------------------------------------------

    def _name_index(self) -> dict[str, list[int]]:
        if self._names is None:
            names: dict[str, list[int]] = {}
            for index, name_off in enumerate(self._name_offs):
                if name_off:
                    name = self.string_at(name_off, self._offsets[index])
                    names.setdefault(name, []).append(self.first_id + index)
            self._names = names
        return self._names

    def find_all(self, name: str, kind: Kind | None = None) -> list[Type]:
        """Every type called ``name`` (of ``kind`` if given), base types first, in id order."""
        found = self.base.find_all(name, kind) if self.base is not None else []
        for type_id in self._name_index().get(name, ()):
            if kind is None or self._kinds[type_id - self.first_id] == kind:
                found.append(self.type_by_id(type_id))
        return found

    def find(self, name: str, kind: Kind | None = None) -> Type:
        """The type called ``name`` (lowest id when several share the name)."""
        found = self.find_all(name, kind)
        if not found:
            what = f"{kind.name} " if kind is not None else ""
            raise BTFNotFoundError(f"no {what}type named {name!r}")
        return found[0]

    def _as_type(self, t: Type | int | str) -> Type:
        if isinstance(t, Type):
            return t
        if isinstance(t, int):
            return self.type_by_id(t)
        return self.find(t)

    # -- layout helpers -----------------------------------------------------------------------

    def resolve(self, t: Type | int | str) -> Type:
        """``t`` with typedefs, qualifiers and type tags peeled off."""
        current = self._as_type(t)
        for _ in range(MAX_RESOLVE_DEPTH):
            if current.kind not in TRANSPARENT_KINDS:
                return current
            assert isinstance(current, Typedef | Volatile | Const | Restrict | TypeTag)
            current = self.type_by_id(current.target)
        raise BTFError(f"type chain from {_describe(self._as_type(t))} is too deep or cyclic")

    def sizeof(self, t: Type | int | str) -> int:
        """Size in bytes of ``t`` (resolving typedefs, qualifiers, arrays and VARs)."""
        return self._sizeof(self._as_type(t), 0)

    def _sizeof(self, t: Type, depth: int) -> int:
        if depth > MAX_RESOLVE_DEPTH:
            raise BTFError(f"type chain at {_describe(t)} is too deep or cyclic")
        if isinstance(t, Int | Composite | EnumBase | Float | Datasec):
            return t.size
        if isinstance(t, Pointer):
            return POINTER_SIZE
        if isinstance(t, Array):
            return t.count * self._sizeof(self.type_by_id(t.element), depth + 1)
        if isinstance(t, Typedef | Volatile | Const | Restrict | TypeTag):
            return self._sizeof(self.type_by_id(t.target), depth + 1)
        if isinstance(t, Var):
            return self._sizeof(self.type_by_id(t.type), depth + 1)
        raise BTFError(f"{_describe(t)} has no size")

    def member(self, t: Type | int | str, path: str) -> MemberLayout:
        """Locate ``path`` (``"a.b.c"``) inside struct/union ``t``.

        Members of anonymous structs and unions are found as if they were
        members of the enclosing aggregate, as in C. Offsets are relative to
        the start of ``t``.
        """
        outer = self._as_type(t)
        current: Type = outer
        bit_offset = 0
        found: Member | None = None
        for part in path.split("."):
            aggregate = self.resolve(current)
            if not isinstance(aggregate, Composite):
                raise BTFNotFoundError(
                    f"{_describe(aggregate)} has no members (looking up {path!r})"
                )
            located = self._find_member(aggregate, part, 0)
            if located is None:
                raise BTFNotFoundError(f"{_describe(aggregate)} has no member {part!r}")
            found, relative = located
            bit_offset += relative
            current = self.type_by_id(found.type)
        assert found is not None
        bitfield_size = found.bitfield_size
        resolved = self.resolve(current)
        if (
            not bitfield_size
            and isinstance(resolved, Int)
            and (resolved.offset or resolved.bits != resolved.size * 8)
        ):
            # Old-style bitfield: the INT itself carries bit offset and width.
            bit_offset += resolved.offset
            bitfield_size = resolved.bits
        return MemberLayout(path, current, bit_offset, bitfield_size, self.sizeof(current))

    def _find_member(
        self, aggregate: Composite, name: str, depth: int
    ) -> tuple[Member, int] | None:
        if depth > MAX_RESOLVE_DEPTH:
            raise BTFError(f"anonymous members of {_describe(aggregate)} nest too deeply")
        for m in aggregate.members:
            if m.name == name:
                return m, m.bit_offset
        for m in aggregate.members:
            if m.name:
                continue
            inner = self.resolve(m.type)
            if isinstance(inner, Composite):
                located = self._find_member(inner, name, depth + 1)
                if located is not None:
                    return located[0], m.bit_offset + located[1]
        return None

    # -- enums and kfuncs ---------------------------------------------------------------------

    def enum_value(self, enum_name: str, enumerator: str) -> int:
        """Value of ``enumerator`` in ``enum enum_name`` (ENUM or ENUM64)."""
        for candidate in self.find_all(enum_name):
            if isinstance(candidate, EnumBase):
                return candidate.value_of(enumerator)
        raise BTFNotFoundError(f"no enum named {enum_name!r}")

    def enumerator(self, name: str) -> tuple[EnumBase, int]:
        """The enum that defines enumerator ``name`` and its value (lowest id wins)."""
        if self._enumerators is None:
            index: dict[str, list[int]] = {}
            for position, kind in enumerate(self._kinds):
                if kind in (Kind.ENUM, Kind.ENUM64):
                    t = self.type_by_id(self.first_id + position)
                    assert isinstance(t, EnumBase)
                    for v in t.values:
                        index.setdefault(v.name, []).append(t.id)
            self._enumerators = index
        if self.base is not None:
            try:
                return self.base.enumerator(name)
            except BTFNotFoundError:
                pass
        ids = self._enumerators.get(name)
        if not ids:
            raise BTFNotFoundError(f"no enumerator named {name!r}")
        owner = self.type_by_id(ids[0])
        assert isinstance(owner, EnumBase)
        return owner, owner.value_of(name)

    def kfuncs(self) -> dict[str, int]:
        """Name -> FUNC id of every kfunc (including the base's, for module BTF).

        A kfunc is a FUNC that a DECL_TAG ``"bpf_kfunc"`` with component index
        -1 points at. The kernel build (pahole) emits those tags for every
        function in a registered kfunc set; the ``.BTF_ids`` sets themselves
        are not part of the BTF the kernel exports.
        """
        if self._kfuncs is None:
            own: dict[str, int] = {}
            for position, kind in enumerate(self._kinds):
                if kind != Kind.DECL_TAG:
                    continue
                tag = self.type_by_id(self.first_id + position)
                assert isinstance(tag, DeclTag)
                if tag.name != KFUNC_DECL_TAG or tag.component_index != -1:
                    continue
                target = self.type_by_id(tag.target)
                if isinstance(target, Func):
                    own.setdefault(target.name, target.id)
            self._kfuncs = own
        if self.base is None:
            return dict(self._kfuncs)
        return {**self.base.kfuncs(), **self._kfuncs}

    def kfunc_id(self, name: str) -> int:
        """BTF id of the FUNC for kfunc ``name`` (the ``imm`` of a kfunc call)."""
        kfunc = self.kfuncs().get(name)
        if kfunc is None:
            if any(isinstance(t, Func) for t in self.find_all(name, Kind.FUNC)):
                raise BTFNotFoundError(f"function {name!r} exists but is not marked as a kfunc")
            raise BTFNotFoundError(f"no kfunc named {name!r}")
        return kfunc

    def func_proto(self, func: Type | int | str) -> FuncProto:
        """The FUNC_PROTO of a FUNC (by value, id or name)."""
        t = self._as_type(func) if not isinstance(func, str) else self.find(func, Kind.FUNC)
        if not isinstance(t, Func):
            raise BTFNotFoundError(f"{_describe(t)} is not a function")
        proto = self.type_by_id(t.proto)
        if not isinstance(proto, FuncProto):
            raise BTFError(f"function {t.name!r} points at {_describe(proto)}, not a FUNC_PROTO")
        return proto


def _describe(t: Type) -> str:
    return f"{t.kind.name} {t.name or '(anon)'} (id {t.id})"


@functools.cache
def load_vmlinux() -> Spec:
    """The running kernel's BTF, read from ``/sys/kernel/btf/vmlinux`` once per process."""
    try:
        data = VMLINUX_BTF_PATH.read_bytes()
    except OSError as err:
        raise BTFError(
            f"cannot read kernel BTF from {VMLINUX_BTF_PATH}: {err.strerror}"
            " (kernel built without CONFIG_DEBUG_INFO_BTF?)"
        ) from err
    return Spec.parse(data)


@functools.cache
def load_kernel_module(module: str) -> Spec:
    """Split BTF of a loaded kernel module, on top of :func:`load_vmlinux`."""
    path = VMLINUX_BTF_PATH.parent / module
    if module in ("", ".", "..", "vmlinux") or "/" in module:
        raise BTFError(f"{module!r} is not a kernel module name")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BTFError(f"no BTF for kernel module {module!r} at {path}: {err.strerror}") from err
    return Spec.parse(data, base=load_vmlinux())
