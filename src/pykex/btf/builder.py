"""Writing raw BTF for programs pykex compiles.

A :class:`Builder` collects :mod:`pykex.btf.types` values and emits the bytes
of a ``.BTF`` section (or of a ``BPF_BTF_LOAD`` blob: the format is the same).

* Ids are handed out in insertion order, starting at 1 (or right after the
  base's last id for split BTF), and never change.
* Adding a type equal to one already added returns the existing id instead
  of a new record. Type values refer to other types by id, so equal values
  really are identical types.
* A type may refer to an id that has not been added yet (needed for cycles
  such as ``struct list { struct list *next; }``); :meth:`Builder.emit`
  checks that every reference has been filled by then.
* Strings are interned: each distinct name is stored once.

Besides the generic :meth:`Builder.add` there are small helpers for what the
compiler and ELF writer need: scalar types, ``struct bpf_spin_lock`` and the
libbpf-style BTF map definitions placed in the ``.maps`` section.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pykex.btf.errors import BTFError
from pykex.btf.reader import BTF_MAGIC, BTF_VERSION, HEADER_SIZE, Spec
from pykex.btf.types import (
    Array,
    Composite,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
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

#: Name clang gives the index type of every array it describes.
ARRAY_INDEX_TYPE_NAME = "__ARRAY_SIZE_TYPE__"
MAPS_SECTION = ".maps"


@dataclass(frozen=True, slots=True)
class MapPlacement:
    """A map definition placed in the ``.maps`` DATASEC."""

    name: str
    var_id: int
    struct_id: int
    offset: int
    size: int


class Builder:
    """Accumulates BTF types and emits raw BTF."""

    def __init__(self, base: Spec | None = None, byteorder: str = "little") -> None:
        if byteorder not in ("little", "big"):
            raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}")
        self.base = base
        self.byteorder = byteorder
        self.first_id = len(base) if base is not None else 1
        self._first_string = base.string_end if base is not None else 0
        self._types: list[Type] = []
        self._ids: dict[Type, int] = {}
        self._string_table = bytearray() if base is not None else bytearray(b"\0")
        self._string_offsets: dict[str, int] = {} if base is not None else {"": 0}

    def __len__(self) -> int:
        """Number of type ids, counting ``void`` and base types (the next id to be assigned)."""
        return self.first_id + len(self._types)

    def type_by_id(self, type_id: int) -> Type:
        if self.first_id <= type_id < len(self):
            return self._types[type_id - self.first_id]
        if self.base is not None and type_id < self.first_id:
            return self.base.type_by_id(type_id)
        raise BTFError(f"no type with id {type_id} in this builder")

    def types(self) -> list[Type]:
        """The types added so far, in id order."""
        return list(self._types)

    # -- generic ------------------------------------------------------------------------------

    def add(self, t: Type) -> int:
        """Add ``t`` and return its id (the existing id if an equal type was added)."""
        existing = self._ids.get(t)
        if existing is not None:
            return existing
        if t.kind == Kind.VOID:
            return 0
        type_id = len(self)
        self._types.append(t)
        self._ids[t] = type_id
        return type_id

    def add_string(self, text: str) -> int:
        """Offset of ``text`` in the string section, adding it if new."""
        offset = self._string_offsets.get(text)
        if offset is None:
            encoded = text.encode("utf-8", "surrogateescape")
            if b"\0" in encoded:
                raise BTFError(f"BTF strings cannot contain NUL: {text!r}")
            offset = self._first_string + len(self._string_table)
            self._string_table += encoded + b"\0"
            self._string_offsets[text] = offset
        return offset

    # -- convenience constructors -------------------------------------------------------------

    def add_int(
        self,
        name: str,
        size: int,
        *,
        signed: bool = False,
        char: bool = False,
        bool_: bool = False,
    ) -> int:
        encoding = IntEncoding.NONE
        if signed:
            encoding |= IntEncoding.SIGNED
        if char:
            encoding |= IntEncoding.CHAR
        if bool_:
            encoding |= IntEncoding.BOOL
        return self.add(Int(name=name, size=size, encoding=encoding))

    def add_float(self, name: str, size: int) -> int:
        return self.add(Float(name=name, size=size))

    def add_pointer(self, target: int) -> int:
        return self.add(Pointer(target=target))

    def add_array(self, element: int, count: int, index: int | None = None) -> int:
        """``element[count]``; the index type defaults to clang's ``__ARRAY_SIZE_TYPE__``."""
        if index is None:
            index = self.add_int(ARRAY_INDEX_TYPE_NAME, 4)
        return self.add(Array(element=element, index=index, count=count))

    def add_struct(self, name: str, size: int, members: Iterable[Member]) -> int:
        return self.add(Struct(name=name, size=size, members=tuple(members)))

    def add_union(self, name: str, size: int, members: Iterable[Member]) -> int:
        return self.add(Union(name=name, size=size, members=tuple(members)))

    def add_enum(
        self, name: str, values: Iterable[tuple[str, int]], *, size: int = 4, signed: bool = False
    ) -> int:
        """An ENUM, or an ENUM64 when ``size`` is 8."""
        cls = Enum64 if size == 8 else Enum
        entries = tuple(EnumValue(n, v) for n, v in values)
        return self.add(cls(name=name, size=size, values=entries, signed=signed))

    def add_fwd(self, name: str, *, union: bool = False) -> int:
        return self.add(Fwd(name=name, union=union))

    def add_typedef(self, name: str, target: int) -> int:
        return self.add(Typedef(name=name, target=target))

    def add_const(self, target: int) -> int:
        return self.add(Const(target=target))

    def add_volatile(self, target: int) -> int:
        return self.add(Volatile(target=target))

    def add_restrict(self, target: int) -> int:
        return self.add(Restrict(target=target))

    def add_type_tag(self, name: str, target: int) -> int:
        return self.add(TypeTag(name=name, target=target))

    def add_func_proto(self, result: int, params: Iterable[tuple[str, int]]) -> int:
        return self.add(FuncProto(result=result, params=tuple(Param(n, t) for n, t in params)))

    def add_func(self, name: str, proto: int, linkage: FuncLinkage = FuncLinkage.GLOBAL) -> int:
        return self.add(Func(name=name, proto=proto, linkage=linkage))

    def add_var(
        self, name: str, type_id: int, linkage: VarLinkage = VarLinkage.GLOBAL_ALLOCATED
    ) -> int:
        return self.add(Var(name=name, type=type_id, linkage=linkage))

    def add_datasec(self, name: str, size: int, variables: Iterable[VarSecinfo]) -> int:
        return self.add(Datasec(name=name, size=size, vars=tuple(variables)))

    def add_decl_tag(self, name: str, target: int, component_index: int = -1) -> int:
        return self.add(DeclTag(name=name, target=target, component_index=component_index))

    # -- what maps need -----------------------------------------------------------------------

    def add_spin_lock(self) -> int:
        """``struct bpf_spin_lock { __u32 val; }``, the name the kernel finds map-value locks by."""
        u32 = self.add_int("unsigned int", 4)
        return self.add_struct("bpf_spin_lock", 4, [Member("val", u32, 0)])

    def add_map_definition(
        self,
        *,
        map_type: int,
        max_entries: int,
        key: int | None = None,
        value: int | None = None,
        key_size: int | None = None,
        value_size: int | None = None,
        map_flags: int | None = None,
        extra: Sequence[tuple[str, int]] = (),
    ) -> int:
        """The anonymous struct libbpf reads a BTF-defined map from.

        Integer attributes are encoded as ``int (*name)[value]`` (libbpf's
        ``__uint``) and ``key``/``value`` types as pointers to them
        (``__type``). ``extra`` adds more integer attributes such as
        ``("pinning", 1)``. Returns the struct's id.
        """
        int_id = self.add_int("int", 4, signed=True)

        def encoded_number(number: int) -> int:
            return self.add_pointer(self.add_array(int_id, number))

        fields: list[tuple[str, int]] = [("type", encoded_number(map_type))]
        if key is not None:
            fields.append(("key", self.add_pointer(key)))
        if key_size is not None:
            fields.append(("key_size", encoded_number(key_size)))
        if value is not None:
            fields.append(("value", self.add_pointer(value)))
        if value_size is not None:
            fields.append(("value_size", encoded_number(value_size)))
        fields.append(("max_entries", encoded_number(max_entries)))
        if map_flags is not None:
            fields.append(("map_flags", encoded_number(map_flags)))
        fields.extend((name, encoded_number(number)) for name, number in extra)
        members = [Member(name, type_id, 64 * i) for i, (name, type_id) in enumerate(fields)]
        return self.add_struct("", 8 * len(members), members)

    def add_maps_section(self, maps: Sequence[tuple[str, int]]) -> tuple[int, list[MapPlacement]]:
        """Place map definitions (name, struct id) one after another in ``.maps``.

        Adds a global VAR per map and the DATASEC; returns the DATASEC id and
        where each map landed, which the ELF writer uses for its symbols.
        """
        placements = []
        offset = 0
        for name, struct_id in maps:
            definition = self.type_by_id(struct_id)
            if not isinstance(definition, Composite):
                raise BTFError(f"map {name!r}: type {struct_id} is not a struct")
            var_id = self.add_var(name, struct_id)
            placements.append(MapPlacement(name, var_id, struct_id, offset, definition.size))
            offset += definition.size
        secinfos = [VarSecinfo(p.var_id, p.offset, p.size) for p in placements]
        return self.add_datasec(MAPS_SECTION, offset, secinfos), placements

    # -- encoding -----------------------------------------------------------------------------

    def emit(self) -> bytes:
        """The raw BTF: header, type section, string section."""
        order = "<" if self.byteorder == "little" else ">"
        total = len(self)
        types = bytearray()
        for type_id, t in enumerate(self._types, self.first_id):
            for referenced in t.references():
                if referenced >= total:
                    raise BTFError(
                        f"{t.kind.name} {t.name or '(anon)'} (id {type_id}) refers to type id"
                        f" {referenced}, which was never added"
                    )
            types += self._encode(t, order)
        strings = bytes(self._string_table)
        header = struct.pack(
            order + "HBBIIIII",
            BTF_MAGIC,
            BTF_VERSION,
            0,
            HEADER_SIZE,
            0,
            len(types),
            len(types),
            len(strings),
        )
        return header + bytes(types) + strings

    def _encode(self, t: Type, order: str) -> bytes:
        name_off = self.add_string(t.name)

        def head(vlen: int, size_or_type: int, kind_flag: bool = False) -> bytes:
            if not 0 <= vlen <= 0xFFFF:
                raise BTFError(f"{t.kind.name} {t.name!r} has {vlen} entries (at most 65535)")
            info = kind_flag << 31 | t.kind << 24 | vlen
            return struct.pack(order + "III", name_off, info, size_or_type)

        u32 = struct.Struct(order + "I")
        if isinstance(t, Int):
            if t.bits > 128 or t.offset + t.bits > 8 * t.size:
                raise BTFError(f"INT {t.name!r}: {t.bits} bits at {t.offset} exceed its size")
            return head(0, t.size) + u32.pack(t.encoding << 24 | t.offset << 16 | t.bits)
        if isinstance(t, Pointer | Typedef | Volatile | Const | Restrict):
            return head(0, t.target)
        if isinstance(t, TypeTag):
            return head(0, t.target, t.attribute)
        if isinstance(t, Array):
            return head(0, 0) + struct.pack(order + "III", t.element, t.index, t.count)
        if isinstance(t, Composite):
            bitfields = t.has_bitfields
            out = bytearray(head(len(t.members), t.size, bitfields))
            for m in t.members:
                if bitfields:
                    if m.bit_offset >= 1 << 24 or m.bitfield_size > 0xFF:
                        raise BTFError(f"member {m.name!r} of {t.name!r} does not fit a bitfield")
                    offset = m.bitfield_size << 24 | m.bit_offset
                else:
                    offset = m.bit_offset
                out += struct.pack(order + "III", self.add_string(m.name), m.type, offset)
            return bytes(out)
        if isinstance(t, Enum):
            out = bytearray(head(len(t.values), t.size, t.signed))
            for v in t.values:
                out += struct.pack(order + "II", self.add_string(v.name), v.value & 0xFFFFFFFF)
            return bytes(out)
        if isinstance(t, Enum64):
            out = bytearray(head(len(t.values), t.size, t.signed))
            for v in t.values:
                raw = v.value & 0xFFFFFFFFFFFFFFFF
                out += struct.pack(
                    order + "III", self.add_string(v.name), raw & 0xFFFFFFFF, raw >> 32
                )
            return bytes(out)
        if isinstance(t, Fwd):
            return head(0, 0, t.union)
        if isinstance(t, Func):
            return head(t.linkage, t.proto)
        if isinstance(t, FuncProto):
            out = bytearray(head(len(t.params), t.result))
            for p in t.params:
                out += struct.pack(order + "II", self.add_string(p.name), p.type)
            return bytes(out)
        if isinstance(t, Var):
            return head(0, t.type) + u32.pack(t.linkage)
        if isinstance(t, Datasec):
            out = bytearray(head(len(t.vars), t.size))
            for v in t.vars:
                out += struct.pack(order + "III", v.type, v.offset, v.size)
            return bytes(out)
        if isinstance(t, Float):
            return head(0, t.size)
        if isinstance(t, DeclTag):
            return head(0, t.target, t.attribute) + struct.pack(order + "i", t.component_index)
        raise BTFError(f"cannot encode {type(t).__name__}")
