"""C structs declared with Python annotations.

```python
class Key(Struct):
    addr: Array[u8, 16]
    port: be16
```

The class is a layout type (``Key.size``, ``Key.align``, ``Key.fields``,
``Key.offset_of("port")``, ``Key.encode``/``Key.decode``) laid out by the C
rules: each field at the next multiple of its alignment, the struct aligned
to its most aligned field and padded at the end to a multiple of that.
``class Hdr(Struct, packed=True)`` drops all padding, like
``__attribute__((packed))``.

Instances are mutable records: ``Key(port=80)`` (missing fields are zero),
attribute access checked on assignment, equality and hashing by value, and
a readable repr. Field names starting with ``_`` are reserved; any other
name, ``size`` included, is free because the type's own attributes live on
the class, not on its instances.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .types import (
    Buffer,
    BytesLike,
    LayoutError,
    LayoutType,
    LayoutTypeError,
    align_up,
    as_layout_type,
    describe,
)


@dataclass(frozen=True)
class Field:
    """One member of a struct: its name, layout type and byte offset."""

    name: str
    type: LayoutType
    offset: int


class StructType(LayoutType):
    """Metaclass of :class:`Struct` classes; computes the layout at class creation."""

    _kind_ = "struct"
    _fields_: tuple[Field, ...]
    _by_name_: dict[str, Field]
    _packed_: bool

    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        *,
        packed: bool = False,
    ) -> StructType:
        cls = super().__new__(mcls, name, bases, namespace)
        inherited: list[tuple[str, LayoutType]] = []
        for base in bases:
            if isinstance(base, StructType) and hasattr(base, "_fields_"):
                inherited = [(f.name, f.type) for f in base._fields_]
                break
        own = _resolve_annotations(cls, namespace)
        cls._layout(inherited + own, packed)
        return cls

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                 **options: Any) -> None:
        super().__init__(name, bases, namespace)

    def _layout(cls, members: list[tuple[str, LayoutType]], packed: bool) -> None:
        fields: list[Field] = []
        offset = 0
        alignment = 1
        for field_name, field_type in members:
            field_align = 1 if packed else field_type.align
            offset = align_up(offset, field_align)
            fields.append(Field(field_name, field_type, offset))
            offset += field_type.size
            alignment = max(alignment, field_align)
        cls._fields_ = tuple(fields)
        cls._by_name_ = {f.name: f for f in fields}
        cls._packed_ = packed
        cls._align_ = alignment
        cls._size_ = align_up(offset, alignment)

    @property
    def fields(cls) -> tuple[Field, ...]:
        """The members in declaration order (base struct's first)."""
        return cls._fields_

    @property
    def packed(cls) -> bool:
        return cls._packed_

    def field(cls, name: str) -> Field:
        try:
            return cls._by_name_[name]
        except KeyError:
            raise KeyError(f"{cls.__name__} has no field {name!r}") from None

    def offset_of(cls, name: str) -> int:
        """Byte offset of field ``name`` (C ``offsetof``)."""
        return cls.field(name).offset

    def check(cls, value: Any, path: str | None = None) -> Any:
        path = path or cls.__name__
        if type(value) is cls:  # a subclass instance would lose its own fields
            for f in cls._fields_:
                f.type.check(value.__dict__[f.name], f"{path}.{f.name}")
            return value
        if isinstance(value, dict):
            unknown = [k for k in value if k not in cls._by_name_]
            if unknown:
                raise LayoutTypeError(
                    path, f"{cls.__name__} (fields {cls._field_list()})",
                    f"dict with unknown field {unknown[0]!r}",
                )
            items = value
        elif isinstance(value, tuple | list) and not isinstance(value, BytesLike):
            if len(value) != len(cls._fields_):
                raise LayoutTypeError(
                    path, f"{cls.__name__} ({len(cls._fields_)} fields)",
                    f"{type(value).__name__} of {len(value)} values",
                )
            items = {f.name: item for f, item in zip(cls._fields_, value, strict=True)}
        else:
            raise LayoutTypeError(
                path, f"{cls.__name__} (a {cls.__name__}, tuple or dict)", describe(value)
            )
        record = cls.__new__(cls)
        slots = record.__dict__
        for f in cls._fields_:
            if f.name in items:
                slots[f.name] = f.type.check(items[f.name], f"{path}.{f.name}")
            else:
                slots[f.name] = f.type.zero()
        return record

    def zero(cls) -> Any:
        record = cls.__new__(cls)
        record.__dict__.update((f.name, f.type.zero()) for f in cls._fields_)
        return record

    def pack_into(cls, buffer: Buffer, offset: int, value: Any) -> None:
        slots = value.__dict__
        for f in cls._fields_:
            f.type.pack_into(buffer, offset + f.offset, slots[f.name])

    def unpack_from(cls, buffer: bytes | Buffer, offset: int = 0) -> Any:
        record = cls.__new__(cls)
        record.__dict__.update(
            (f.name, f.type.unpack_from(buffer, offset + f.offset)) for f in cls._fields_
        )
        return record

    def _field_list(cls) -> str:
        return ", ".join(f.name for f in cls._fields_) or "none"


def _resolve_annotations(cls: type, namespace: dict[str, Any]) -> list[tuple[str, LayoutType]]:
    """The class's own annotated fields as layout types, in order.

    String annotations (``from __future__ import annotations``) are
    evaluated in the defining module, the way ``typing.get_type_hints``
    would, so that errors can name the field.
    """
    module = sys.modules.get(cls.__module__)
    module_globals = vars(module) if module is not None else {}
    members = []
    for field_name, annotation in inspect.get_annotations(cls).items():
        where = f"field {field_name!r} of {cls.__name__}"
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, dict(module_globals), dict(namespace))
            except Exception as failure:
                raise TypeError(
                    f"{where}: cannot evaluate annotation {annotation!r} ({failure}); "
                    "define the types it names at module level"
                ) from None
        if typing.get_origin(annotation) is typing.ClassVar or annotation is typing.ClassVar:
            continue
        if field_name.startswith("_"):
            raise TypeError(f"{where}: names starting with '_' are reserved")
        if field_name in namespace:
            raise TypeError(f"{where}: struct fields cannot have defaults (missing fields are 0)")
        members.append((field_name, as_layout_type(annotation, where)))
    return members


class Struct(metaclass=StructType):
    """Base of C structs declared by annotations; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        fields = cls._fields_
        if len(args) > len(fields):
            raise TypeError(
                f"{cls.__name__} takes at most {len(fields)} positional values, got {len(args)}"
            )
        given = {f.name: value for f, value in zip(fields, args, strict=False)}
        for key, value in kwargs.items():
            if key not in cls._by_name_:
                raise TypeError(
                    f"{cls.__name__} has no field {key!r} (fields: {cls._field_list()})"
                )
            if key in given:
                raise TypeError(f"{cls.__name__} got field {key!r} twice")
            given[key] = value
        slots = self.__dict__
        for f in fields:
            if f.name in given:
                slots[f.name] = f.type.check(given[f.name], f"{cls.__name__}.{f.name}")
            else:
                slots[f.name] = f.type.zero()

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        field = cls._by_name_.get(name)
        if field is None:
            raise AttributeError(
                f"{cls.__name__} has no field {name!r} (fields: {cls._field_list()})"
            )
        self.__dict__[name] = field.type.check(value, f"{cls.__name__}.{name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of {type(self).__name__}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        # By value, so records can be dict keys (map keys are). Mutating a
        # record used as a dict key breaks that dict, as with any hash by value.
        return hash((type(self), _frozen(self)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{f.name}={self.__dict__[f.name]!r}" for f in type(self)._fields_)
        return f"{type(self).__name__}({inner})"

    def __bytes__(self) -> bytes:
        return type(self).encode(self)


def _frozen(value: Any) -> Any:
    if isinstance(value, Struct):
        return tuple(_frozen(value.__dict__[f.name]) for f in type(value)._fields_)
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


def make_struct(
    name: str, fields: Iterable[tuple[str, Any]], *, packed: bool = False
) -> StructType:
    """A new :class:`Struct` class from ``(name, type)`` pairs, for code that
    builds types at run time (from BTF, an ELF file, a generated test)."""
    members = list(fields)
    namespace: dict[str, Any] = {
        "__annotations__": dict(members),
        "__module__": __name__,
        "__qualname__": name,
    }
    if len(namespace["__annotations__"]) != len(members):
        raise TypeError(f"struct {name} declares a field twice")
    return StructType(name, (Struct,), namespace, packed=packed)


def plain(value: Any) -> Any:
    """``value`` as built-in Python data: structs become dicts, recursively."""
    if isinstance(value, Struct):
        return {f.name: plain(value.__dict__[f.name]) for f in type(value)._fields_}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


__all__ = ["Field", "LayoutError", "Struct", "StructType", "make_struct", "plain"]
