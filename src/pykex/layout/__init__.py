"""pykex.layout: C data layout shared by the compiler and the kernel interface.

Types are classes (metaclass :class:`LayoutType`) that answer ``size``,
``align``, ``kind`` and, per kind, ``signed``/``byteorder`` (integers),
``element``/``length`` (arrays, bytes) or ``fields``/``offset_of`` (structs).
Every type checks Python values (``check``), and converts them to and from
their C bytes (``encode``/``decode``, ``pack_into``/``unpack_from``).

Scalars: ``u8 u16 u32 u64 i8 i16 i32 i64`` (host byte order), ``be16 be32
be64`` (network byte order), ``bool_`` (Python's ``bool`` is accepted in
annotations). Compounds: ``Array[T, N]`` (a ``list``), ``Bytes[N]`` (a
``bytes``), and :class:`Struct` subclasses declared by annotations.

A value that does not fit raises a :class:`LayoutError` that is also a
``TypeError``, ``ValueError`` or ``OverflowError`` and names the place
(``Key.port must be be16 (0..65535), got 70000``).
"""

from .struct import Field, Struct, StructType, make_struct, plain
from .types import (
    Array,
    ArrayType,
    BoolType,
    Bytes,
    BytesType,
    Int,
    IntType,
    LayoutError,
    LayoutOverflowError,
    LayoutType,
    LayoutTypeError,
    LayoutValueError,
    as_layout_type,
    be16,
    be32,
    be64,
    bool_,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
)

__all__ = [
    "Array",
    "ArrayType",
    "BoolType",
    "Bytes",
    "BytesType",
    "Field",
    "Int",
    "IntType",
    "LayoutError",
    "LayoutOverflowError",
    "LayoutType",
    "LayoutTypeError",
    "LayoutValueError",
    "Struct",
    "StructType",
    "as_layout_type",
    "be16",
    "be32",
    "be64",
    "bool_",
    "i8",
    "i16",
    "i32",
    "i64",
    "make_struct",
    "plain",
    "u8",
    "u16",
    "u32",
    "u64",
]
