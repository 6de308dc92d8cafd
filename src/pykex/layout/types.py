"""Layout types: fixed-width integers, booleans, byte strings and arrays.

Every layout type is a Python class whose metaclass is :class:`LayoutType`.
The class itself is the type: it knows its ``size``, ``align`` and ``kind``,
checks Python values against itself and converts them to and from bytes.
Being classes, the types read naturally in annotations (``packets: u64``)
and ``u64(5)`` checks a value and returns a plain ``int``.

Values are plain Python objects: ``int`` for integer types, ``bool`` for
:class:`bool_`, ``bytes`` for :class:`Bytes`, ``list`` for :class:`Array`
and :class:`~pykex.layout.struct.Struct` instances for structs.
"""

from __future__ import annotations

import operator
import struct
import sys
from typing import Any, ClassVar

Buffer = bytearray | memoryview
BytesLike = (bytes, bytearray, memoryview)

# struct-module codes for unsigned/signed integers of each width.
_INT_CODES = {1: ("B", "b"), 2: ("H", "h"), 4: ("I", "i"), 8: ("Q", "q")}


class LayoutError(Exception):
    """A value does not fit its layout type.

    ``path`` names the place (``Key.port``, ``Key.addr[3]``), ``expected``
    the type (``be16 (0..65535)``) and ``got`` the offending value, so a
    caller can re-label the error (``key for map 'conns': ...``).
    """

    def __init__(self, path: str, expected: str, got: str) -> None:
        self.path = path
        self.expected = expected
        self.got = got
        super().__init__(f"{path} must be {expected}, got {got}")

    def relabel(self, label: str, root: str) -> LayoutError:
        """The same error told from ``label``'s point of view.

        An error at ``root`` (the whole value) reads ``<label> must be ...``;
        one deeper inside reads ``<label>: Key.port must be ...``.
        """
        path = label if self.path == root else f"{label}: {self.path}"
        return type(self)(path, self.expected, self.got)


class LayoutTypeError(LayoutError, TypeError):
    """The value has the wrong Python type for its layout type."""


class LayoutValueError(LayoutError, ValueError):
    """The value has the right Python type but the wrong shape (length)."""


class LayoutOverflowError(LayoutError, OverflowError):
    """An integer does not fit the width or sign of its type."""


def describe(value: object) -> str:
    """A short description of ``value`` for error messages."""
    if isinstance(value, BytesLike):
        return f"bytes of length {len(value)}"
    if isinstance(value, bool | int):
        return repr(value)
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def align_up(offset: int, alignment: int) -> int:
    return (offset + alignment - 1) // alignment * alignment


class LayoutType(type):
    """Metaclass of every layout type: what a compiler or the kernel
    interface may ask any type.

    Subclasses implement :meth:`check`, :meth:`pack_into`,
    :meth:`unpack_from` and :meth:`zero`; :meth:`encode` and
    :meth:`decode` are built on them.
    """

    _size_: int
    _align_: int
    _kind_: ClassVar[str] = "abstract"

    @property
    def size(cls) -> int:
        """Bytes one value occupies, trailing padding included (C ``sizeof``)."""
        return cls._concrete()._size_

    @property
    def align(cls) -> int:
        """Alignment in bytes (C ``_Alignof``)."""
        return cls._concrete()._align_

    @property
    def kind(cls) -> str:
        """``"int"``, ``"bool"``, ``"bytes"``, ``"array"`` or ``"struct"``."""
        return type(cls)._kind_

    @property
    def name(cls) -> str:
        """The type as pykex source spells it (``u32``, ``Array[u8, 16]``)."""
        return cls.__name__

    def _concrete(cls) -> LayoutType:
        if not hasattr(cls, "_size_"):
            raise TypeError(f"{cls.__name__} is not a complete layout type")
        return cls

    def check(cls, value: Any, path: str | None = None) -> Any:
        """``value`` normalised for this type; a :class:`LayoutError` otherwise.

        ``path`` names the value in messages (default: the type's name).
        """
        raise NotImplementedError

    def zero(cls) -> Any:
        """The value whose encoding is all zero bytes."""
        raise NotImplementedError

    def pack_into(cls, buffer: Buffer, offset: int, value: Any) -> None:
        """Write an already checked ``value`` at ``offset``."""
        raise NotImplementedError

    def unpack_from(cls, buffer: bytes | Buffer, offset: int = 0) -> Any:
        """Read one value at ``offset``."""
        raise NotImplementedError

    def encode(cls, value: Any) -> bytes:
        """The bytes of ``value`` in this type's C layout."""
        checked = cls.check(value)
        buffer = bytearray(cls.size)
        cls.pack_into(buffer, 0, checked)
        return bytes(buffer)

    def decode(cls, data: bytes | Buffer) -> Any:
        """The value encoded in ``data``, which must be exactly ``size`` bytes."""
        if len(data) != cls.size:
            raise ValueError(
                f"{cls.name} is {cls.size} bytes, cannot decode {len(data)} bytes"
            )
        return cls.unpack_from(data, 0)

    def __repr__(cls) -> str:
        return cls.name


# -- integers ------------------------------------------------------------------


class IntType(LayoutType):
    """Metaclass of the integer types; ``class u16(Int, size=2)`` makes one."""

    _kind_ = "int"
    _signed_: bool
    _byteorder_: str
    _min_: int
    _max_: int
    _codec_: struct.Struct

    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        *,
        size: int | None = None,
        signed: bool = False,
        byteorder: str = sys.byteorder,
    ) -> IntType:
        cls = super().__new__(mcls, name, bases, namespace)
        if size is not None:
            bits = 8 * size
            cls._size_ = cls._align_ = size
            cls._signed_ = signed
            cls._byteorder_ = byteorder
            cls._min_ = -(1 << (bits - 1)) if signed else 0
            cls._max_ = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
            prefix = "<" if byteorder == "little" else ">"
            cls._codec_ = struct.Struct(prefix + _INT_CODES[size][signed])
        return cls

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                 **options: Any) -> None:
        super().__init__(name, bases, namespace)

    @property
    def signed(cls) -> bool:
        return cls._concrete()._signed_

    @property
    def byteorder(cls) -> str:
        """``"little"`` or ``"big"``: how the value sits in memory."""
        return cls._concrete()._byteorder_

    @property
    def min(cls) -> int:
        return cls._concrete()._min_

    @property
    def max(cls) -> int:
        return cls._concrete()._max_

    def check(cls, value: Any, path: str | None = None) -> int:
        if isinstance(value, (*BytesLike, float)):
            raise LayoutTypeError(path or cls.name, f"{cls.name} (an integer)", describe(value))
        try:
            number = operator.index(value)
        except TypeError:
            raise LayoutTypeError(
                path or cls.name, f"{cls.name} (an integer)", describe(value)
            ) from None
        if not cls._min_ <= number <= cls._max_:
            raise LayoutOverflowError(
                path or cls.name, f"{cls.name} ({cls._min_}..{cls._max_})", str(number)
            )
        return number

    def zero(cls) -> int:
        return 0

    def pack_into(cls, buffer: Buffer, offset: int, value: Any) -> None:
        cls._codec_.pack_into(buffer, offset, value)

    def unpack_from(cls, buffer: bytes | Buffer, offset: int = 0) -> int:
        return cls._codec_.unpack_from(buffer, offset)[0]

    def encode(cls, value: Any) -> bytes:
        return cls._codec_.pack(cls.check(value))


class Int(int, metaclass=IntType):
    """Base of the fixed-width integer types.

    Calling a concrete type checks the value and returns a plain ``int``:
    ``u8(200) == 200``, ``u8(300)`` raises :class:`OverflowError`.
    """

    def __new__(cls, value: Any = 0) -> Any:
        return type(cls).check(cls, value, "value")


class u8(Int, size=1):
    """Unsigned 8-bit integer."""


class u16(Int, size=2):
    """Unsigned 16-bit integer, host byte order."""


class u32(Int, size=4):
    """Unsigned 32-bit integer, host byte order."""


class u64(Int, size=8):
    """Unsigned 64-bit integer, host byte order."""


class i8(Int, size=1, signed=True):
    """Signed 8-bit integer."""


class i16(Int, size=2, signed=True):
    """Signed 16-bit integer, host byte order."""


class i32(Int, size=4, signed=True):
    """Signed 32-bit integer, host byte order."""


class i64(Int, size=8, signed=True):
    """Signed 64-bit integer, host byte order."""


class be16(Int, size=2, byteorder="big"):
    """Unsigned 16-bit integer in network byte order (big-endian)."""


class be32(Int, size=4, byteorder="big"):
    """Unsigned 32-bit integer in network byte order (big-endian)."""


class be64(Int, size=8, byteorder="big"):
    """Unsigned 64-bit integer in network byte order (big-endian)."""


# -- booleans ------------------------------------------------------------------


class BoolType(LayoutType):
    """Metaclass of :class:`bool_`: one byte holding 0 or 1 (C ``_Bool``)."""

    _kind_ = "bool"

    def check(cls, value: Any, path: str | None = None) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise LayoutTypeError(path or cls.name, "bool_ (True, False, 0 or 1)", describe(value))

    def zero(cls) -> bool:
        return False

    def pack_into(cls, buffer: Buffer, offset: int, value: Any) -> None:
        buffer[offset] = 1 if value else 0

    def unpack_from(cls, buffer: bytes | Buffer, offset: int = 0) -> bool:
        return buffer[offset] != 0


class bool_(metaclass=BoolType):
    """C ``_Bool``; Python's ``bool`` may be written instead in annotations."""

    _size_ = 1
    _align_ = 1

    def __new__(cls, value: Any = False) -> Any:
        return type(cls).check(cls, value, "value")


# -- byte strings ----------------------------------------------------------------


class BytesType(LayoutType):
    """Metaclass of ``Bytes[N]``: N raw bytes (C ``unsigned char[N]``) as ``bytes``."""

    _kind_ = "bytes"

    @property
    def length(cls) -> int:
        return cls._concrete()._size_

    def check(cls, value: Any, path: str | None = None) -> bytes:
        expected = f"{cls.name} ({cls.size} bytes)"
        if not isinstance(value, BytesLike):
            raise LayoutTypeError(path or cls.name, expected, describe(value))
        if len(value) != cls._size_:
            raise LayoutValueError(path or cls.name, expected, describe(value))
        return bytes(value)

    def zero(cls) -> bytes:
        return bytes(cls._size_)

    def pack_into(cls, buffer: Buffer, offset: int, value: Any) -> None:
        buffer[offset : offset + cls._size_] = value

    def unpack_from(cls, buffer: bytes | Buffer, offset: int = 0) -> bytes:
        return bytes(buffer[offset : offset + cls._size_])


class Bytes(metaclass=BytesType):
    """``Bytes[N]``: a fixed run of N bytes whose value is a ``bytes`` of length N."""

    _cache: ClassVar[dict[int, BytesType]] = {}

    def __class_getitem__(cls, length: int) -> BytesType:
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise TypeError(f"Bytes[N] needs a positive integer N, got {length!r}")
        if length not in cls._cache:
            cls._cache[length] = BytesType(
                f"Bytes[{length}]", (Bytes,), {"_size_": length, "_align_": 1,
                                              "__module__": __name__}
            )
        return cls._cache[length]


# -- arrays ------------------------------------------------------------------------


class ArrayType(LayoutType):
    """Metaclass of ``Array[T, N]``: N elements of type T laid out back to back."""

    _kind_ = "array"
    _element_: LayoutType
    _length_: int
    _codec_: struct.Struct | None  # whole-array codec for integer elements

    @property
    def element(cls) -> LayoutType:
        return cls._concrete()._element_

    @property
    def length(cls) -> int:
        return cls._concrete()._length_

    @property
    def name(cls) -> str:
        if not hasattr(cls, "_element_"):
            return cls.__name__
        return f"Array[{cls._element_.name}, {cls._length_}]"

    def check(cls, value: Any, path: str | None = None) -> list[Any]:
        path = path or cls.name
        element = cls._element_
        if isinstance(value, BytesLike) and element is u8:
            if len(value) != cls._length_:
                raise LayoutValueError(path, f"{cls.name} ({cls._length_} bytes)", describe(value))
            value = list(value)
        if not isinstance(value, list | tuple):
            raise LayoutTypeError(
                path, f"{cls.name} (a list of {cls._length_})", describe(value)
            )
        if len(value) != cls._length_:
            raise LayoutValueError(
                path, f"{cls.name} ({cls._length_} elements)", f"{len(value)} of them"
            )
        return [element.check(item, f"{path}[{i}]") for i, item in enumerate(value)]

    def zero(cls) -> list[Any]:
        return [cls._element_.zero() for _ in range(cls._length_)]

    def pack_into(cls, buffer: Buffer, offset: int, value: Any) -> None:
        if cls._codec_ is not None:
            cls._codec_.pack_into(buffer, offset, *value)
            return
        element, stride = cls._element_, cls._element_.size
        for i, item in enumerate(value):
            element.pack_into(buffer, offset + i * stride, item)

    def unpack_from(cls, buffer: bytes | Buffer, offset: int = 0) -> list[Any]:
        if cls._codec_ is not None:
            return list(cls._codec_.unpack_from(buffer, offset))
        element, stride = cls._element_, cls._element_.size
        return [element.unpack_from(buffer, offset + i * stride) for i in range(cls._length_)]


class Array(metaclass=ArrayType):
    """``Array[T, N]``: a fixed array of N values of layout type T, as a ``list``.

    An ``Array[u8, N]`` also accepts ``bytes`` of length N.
    """

    _cache: ClassVar[dict[tuple[LayoutType, int], ArrayType]] = {}

    def __class_getitem__(cls, params: tuple[Any, int]) -> ArrayType:
        if not isinstance(params, tuple) or len(params) != 2:
            raise TypeError("Array needs an element type and a length: Array[u8, 16]")
        element = as_layout_type(params[0], "element of Array")
        length = params[1]
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise TypeError(f"Array length must be a positive integer, got {length!r}")
        key = (element, length)
        if key not in cls._cache:
            codec = None
            if isinstance(element, IntType):
                prefix = "<" if element.byteorder == "little" else ">"
                codec = struct.Struct(f"{prefix}{length}{_INT_CODES[element.size][element.signed]}")
            cls._cache[key] = ArrayType(
                f"Array[{element.name}, {length}]",
                (Array,),
                {
                    "_element_": element,
                    "_length_": length,
                    "_size_": element.size * length,
                    "_align_": element.align,
                    "_codec_": codec,
                    "__module__": __name__,
                },
            )
        return cls._cache[key]


def as_layout_type(annotation: Any, what: str) -> LayoutType:
    """The layout type an annotation denotes (``bool`` means :class:`bool_`).

    ``what`` names the annotated thing in the error raised for anything else.
    """
    if annotation is bool:
        return bool_
    if isinstance(annotation, LayoutType) and annotation not in (Int, Bytes, Array):
        annotation._concrete()
        return annotation
    if annotation is int:
        raise TypeError(
            f"{what}: int has no fixed width; use u8, u16, u32, u64, i8, i16, i32 or i64"
        )
    raise TypeError(f"{what}: {annotation!r} is not a layout type")
