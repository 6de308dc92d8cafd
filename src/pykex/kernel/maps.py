"""Typed maps: BPF maps seen from Python through :mod:`pykex.layout` types.

One class per map kind, each offering only what its kind can do (Rex's
typed map handles). Keyed kinds speak the Python mapping protocol::

    counts = HashMap.create(u32, Counter, 1024, name="counts")
    counts[7] = Counter(packets=1)
    counts[7].packets          # 1
    dict(counts.items())       # one batch syscall per chunk, not two per entry

Keys and values may be given as ``bytes`` of the exact size, or in any shape
the layout type accepts (ints, ``Struct`` records, tuples, dicts); one of
the wrong shape raises ``TypeError``/``ValueError``/``OverflowError`` naming
the map (``key for map 'counts' must be u32 (4 bytes), got bytes of length
3``). Per-CPU kinds read a list with one value per possible CPU and take a
list or a single value for all CPUs. Kinds the kernel lacks raise
:class:`~pykex.kernel.errors.NotSupportedError` naming the kind.

Maps made elsewhere are opened with :meth:`Map.from_fd`, :meth:`Map.from_pin`
or :meth:`Map.from_id`, which read the kernel's map info to pick the class.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, NamedTuple, Self

from ..layout import (
    Array,
    Bytes,
    LayoutError,
    LayoutType,
    Struct,
    as_layout_type,
    make_struct,
    u8,
    u16,
    u32,
    u64,
)
from ..layout.types import BytesLike, describe
from . import syscall
from .cpus import possible_cpus
from .errors import ENOTSUPP, BPFError, NotSupportedError, PermissionDeniedError
from .fd import FD
from .fs import pin_path
from .uapi import Cmd, MapFlag, MapType, UpdateFlag
from .uapi import MapInfo as RawMapInfo

# Errors that mean "this kernel (or this map kind) lacks the command".
_UNSUPPORTED = frozenset({errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP})

# Entries per BPF_MAP_LOOKUP_BATCH call. Reading 10,000 u32 -> u64 entries
# took 8 ms in batches against 64 ms walking with next-key + lookup (two
# syscalls per entry), for hash and array maps alike; chunks from 64 to
# 10,000 entries all cost the same, decoding being the rest of the time.
DEFAULT_CHUNK = 1024

_MISSING: Any = object()

TypeLike = LayoutType | type | int
"""A layout type, ``bool``, or a size in bytes (raw ``Bytes[N]``)."""




def sum_per_cpu(values: list[Any]) -> Any:
    """Total of per-CPU values: ints add up; structs and arrays add field by
    field. Totals are Python ints and may exceed the width of their field."""
    first = values[0]
    if isinstance(first, Struct):
        total = type(first).__new__(type(first))
        vars(total).update(
            (f.name, sum_per_cpu([getattr(v, f.name) for v in values]))
            for f in type(first).fields
        )
        return total
    if isinstance(first, list):
        return [sum_per_cpu(list(column)) for column in zip(*values, strict=True)]
    if isinstance(first, bytes):
        raise TypeError("raw bytes values cannot be summed; give the map a value type")
    return sum(values)


@dataclass(frozen=True)
class MapInfo:
    """What the kernel reports about a map (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    type: MapType | int  # int for kinds newer than pykex
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    btf_vmlinux_value_type_id: int
    map_extra: int


def read_map_info(fd: int | FD) -> MapInfo:
    raw = syscall.obj_info(int(fd), RawMapInfo())
    try:
        kind: MapType | int = MapType(raw.type)
    except ValueError:
        kind = raw.type
    return MapInfo(
        id=raw.id,
        type=kind,
        name=raw.name.decode(errors="replace"),
        key_size=raw.key_size,
        value_size=raw.value_size,
        max_entries=raw.max_entries,
        flags=raw.map_flags,
        btf_id=raw.btf_id,
        btf_key_type_id=raw.btf_key_type_id,
        btf_value_type_id=raw.btf_value_type_id,
        btf_vmlinux_value_type_id=raw.btf_vmlinux_value_type_id,
        map_extra=raw.map_extra,
    )


def kind_name(map_type: MapType | int) -> str:
    return map_type.name.lower() if isinstance(map_type, MapType) else f"type {map_type}"


def as_map_type(t: TypeLike | None, what: str) -> LayoutType | None:
    """The layout type of a key or value given as a type, ``bool`` or a byte count."""
    if t is None:
        return None
    if isinstance(t, int) and not isinstance(t, bool):
        if t < 0:
            raise ValueError(f"{what} size must not be negative, got {t}")
        return Bytes[t] if t else None
    return as_layout_type(t, what)


def _default_type(size: int) -> LayoutType | None:
    """How to view a key or value of a map whose types nobody told us."""
    if size == 0:
        return None
    return {1: u8, 2: u16, 4: u32, 8: u64}.get(size) or Bytes[size]


def _round8(size: int) -> int:
    return (size + 7) // 8 * 8


@dataclass
class MapSpec:
    """Everything needed to create a map, for code that works from a
    description (an ELF ``.maps`` section, the compiler's map table)."""

    type: MapType
    key_type: TypeLike | None
    value_type: TypeLike | None
    max_entries: int
    name: str = ""
    flags: int = 0
    btf_fd: int = 0
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    map_extra: int = 0


def create_map(spec: MapSpec) -> Map:
    """Create the map ``spec`` describes, as the class for its kind."""
    kind = Map.class_for(spec.type)
    return kind._create(
        as_map_type(spec.key_type, "key"),
        as_map_type(spec.value_type, "value"),
        spec.max_entries,
        name=spec.name,
        flags=spec.flags,
        btf_fd=spec.btf_fd,
        btf_key_type_id=spec.btf_key_type_id,
        btf_value_type_id=spec.btf_value_type_id,
        map_extra=spec.map_extra,
        map_type=spec.type,
    )


class Map:
    """A map in the kernel: its descriptor, types and the operations every
    kind shares (info, pin, freeze, close). Subclasses add their kind's own."""

    map_type: ClassVar[MapType | None] = None
    # Parameters known to be valid for this kind, to tell "kernel lacks the
    # kind" from "kernel rejects these parameters": key, value, entries, flags.
    _probe: ClassVar[tuple[int, int, int, int]] = (4, 4, 1, 0)
    _required_flags: ClassVar[int] = 0  # added to every creation of the kind
    _classes: ClassVar[dict[int, type[Map]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.map_type is not None and "map_type" in vars(cls):
            Map._classes[int(cls.map_type)] = cls

    def __init__(
        self,
        fd: FD,
        *,
        name: str,
        key_type: LayoutType | None,
        value_type: LayoutType | None,
        max_entries: int,
        flags: int = 0,
        map_type: MapType | int | None = None,
    ) -> None:
        self.fd = fd
        self.name = name
        self.type: MapType | int = map_type if map_type is not None else self.map_type  # type: ignore[assignment]
        self.key_type = key_type
        self.value_type = value_type
        self.max_entries = max_entries
        self.flags = flags
        self.key_size = key_type.size if key_type is not None else 0
        self.value_size = value_type.size if value_type is not None else 0
        self._label = f"map {name!r}" if name else f"unnamed {kind_name(self.type)} map"

    # -- making and opening --------------------------------------------------

    @classmethod
    def class_for(cls, map_type: MapType | int) -> type[Map]:
        """The class pykex uses for maps of ``map_type`` (:class:`Map` if none)."""
        return Map._classes.get(int(map_type), Map)

    @classmethod
    def _create(
        cls,
        key_type: LayoutType | None,
        value_type: LayoutType | None,
        max_entries: int,
        *,
        name: str = "",
        flags: int = 0,
        btf_fd: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        map_extra: int = 0,
        map_type: MapType | int | None = None,
    ) -> Self:
        map_type = map_type if map_type is not None else cls.map_type
        if map_type is None:
            raise TypeError("Map needs a map type; use one of its subclasses")
        if max_entries < 1:
            raise ValueError(f"max_entries of map {name!r} must be at least 1, got {max_entries}")
        flags = int(flags) | cls._required_flags
        key_size = key_type.size if key_type is not None else 0
        value_size = value_type.size if value_type is not None else 0
        feature = f"map type {kind_name(map_type)}"
        try:
            fd = syscall.map_create(
                int(map_type),
                key_size,
                value_size,
                max_entries,
                flags=flags,
                name=name,
                btf_fd=btf_fd,
                btf_key_type_id=btf_key_type_id,
                btf_value_type_id=btf_value_type_id,
                map_extra=map_extra,
                feature=feature,
            )
        except NotSupportedError as failure:
            if not cls._kernel_has_kind(map_type):
                raise
            # The kind exists, so the kernel objected to these parameters.
            raise BPFError(
                "BPF_MAP_CREATE",
                failure.errno,
                f"the kernel rejected {kind_name(map_type)} map {name!r} with "
                f"{key_size}-byte keys, {value_size}-byte values, {max_entries} entries "
                f"and flags {flags:#x}",
            ) from None
        return cls(
            fd,
            name=name,
            key_type=key_type,
            value_type=value_type,
            max_entries=max_entries,
            flags=flags,
            map_type=map_type,
        )

    @classmethod
    def _kernel_has_kind(cls, map_type: MapType | int) -> bool:
        """Whether this kernel creates maps of ``map_type`` at all (asked only
        after a creation failed, so never cached)."""
        key_size, value_size, entries, flags = Map.class_for(map_type)._probe
        try:
            syscall.map_create(int(map_type), key_size, value_size, entries, flags=flags).close()
        except PermissionDeniedError:
            raise
        except BPFError:
            return False
        return True

    @classmethod
    def from_fd(
        cls,
        fd: int | FD,
        *,
        key_type: TypeLike | None = None,
        value_type: TypeLike | None = None,
    ) -> Map:
        """Open the map behind ``fd``. An :class:`FD` is taken over; a plain
        int is duplicated, so the caller still owns (and closes) it.

        Without ``key_type``/``value_type``, keys and values of 1, 2, 4 or 8
        bytes read as unsigned ints and others as ``bytes``.
        """
        owned = fd if isinstance(fd, FD) else FD(os.dup(fd), "map")
        try:
            return cls._adopt(owned, read_map_info(owned), key_type, value_type)
        except BaseException:
            owned.close()
            raise

    @classmethod
    def from_pin(
        cls, path: str, *, key_type: TypeLike | None = None, value_type: TypeLike | None = None
    ) -> Map:
        """Open a pinned map (relative paths are under /sys/fs/bpf)."""
        fd = syscall.obj_get(pin_path(path))
        return cls.from_fd(fd, key_type=key_type, value_type=value_type)

    @classmethod
    def from_id(
        cls, map_id: int, *, key_type: TypeLike | None = None, value_type: TypeLike | None = None
    ) -> Map:
        """Open the map with kernel id ``map_id``."""
        fd = syscall.fd_by_id(Cmd.MAP_GET_FD_BY_ID, map_id)
        return cls.from_fd(fd, key_type=key_type, value_type=value_type)

    @classmethod
    def _adopt(
        cls, fd: FD, info: MapInfo, key_type: TypeLike | None, value_type: TypeLike | None
    ) -> Map:
        kind = Map.class_for(info.type)
        if not issubclass(kind, cls):
            raise TypeError(
                f"map {info.name!r} is a {kind_name(info.type)} map, "
                f"not {cls.__name__} ({kind_name(cls.map_type or 0)})"
            )
        types = kind._types_for(
            info, as_map_type(key_type, "key"), as_map_type(value_type, "value")
        )
        return kind(
            fd,
            name=info.name,
            key_type=types[0],
            value_type=types[1],
            max_entries=info.max_entries,
            flags=info.flags,
            map_type=info.type,
        )

    @classmethod
    def _types_for(
        cls, info: MapInfo, key_type: LayoutType | None, value_type: LayoutType | None
    ) -> tuple[LayoutType | None, LayoutType | None]:
        """Key and value types for an existing map: the given ones, checked
        against the kernel's sizes, or defaults."""
        checked = []
        for role, given, size in (("key", key_type, info.key_size),
                                  ("value", value_type, info.value_size)):
            if given is None:
                checked.append(_default_type(size))
            elif given.size != size:
                raise ValueError(
                    f"{role} type {given.name} is {given.size} bytes, but map {info.name!r} "
                    f"has {size}-byte {role}s"
                )
            else:
                checked.append(given)
        return checked[0], checked[1]

    # -- what every map can do ---------------------------------------------------

    def info(self) -> MapInfo:
        return read_map_info(self.fd)

    def pin(self, path: str) -> str:
        """Pin under bpffs (relative paths go under /sys/fs/bpf); returns the path."""
        full = pin_path(path)
        syscall.obj_pin(int(self.fd), full)
        return full

    def freeze(self) -> None:
        """Make the map read-only for user space (programs may still write)."""
        syscall.map_freeze(int(self.fd))

    def close(self) -> None:
        self.fd.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        key = self.key_type.name if self.key_type is not None else "-"
        value = self.value_type.name if self.value_type is not None else "-"
        return (
            f"<{type(self).__name__} {self.name!r} {key} -> {value}, "
            f"{self.max_entries} entries, {self.fd!r}>"
        )

    # -- encoding and errors -----------------------------------------------------

    def _encode(self, t: LayoutType | None, value: Any, label: str) -> bytes:
        assert t is not None, "only kinds with keys (values) encode keys (values)"
        if isinstance(value, BytesLike):
            if len(value) != t.size:
                raise ValueError(
                    f"{label} must be {t.name} ({t.size} bytes), got {describe(value)}"
                )
            return bytes(value)
        try:
            return t.encode(value)
        except LayoutError as failure:
            raise failure.relabel(label, t.name) from None

    def _index(self, key: Any) -> bytes:
        """The key of an array-like map: an index below max_entries."""
        if isinstance(key, int) and not isinstance(key, bool) and not 0 <= key < self.max_entries:
            raise IndexError(
                f"index {key} out of range for {self._label} ({self.max_entries} entries)"
            )
        return self._encode(self.key_type, key, f"key for {self._label}")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn the errnos of a failed write into what they mean for maps."""
        try:
            yield
        except BPFError as failure:
            if failure.errno == errno.E2BIG:
                raise BPFError(
                    failure.command, failure.errno,
                    f"{self._label} is full ({self.max_entries} entries)",
                ) from None
            if failure.errno == errno.EPERM:
                raise PermissionDeniedError(
                    failure.command, failure.errno,
                    f"{self._label} is read-only from user space (frozen or opened read-only)",
                ) from None
            raise


class KeyedMap(Map):
    """Maps addressed by key, with the Python mapping protocol.

    ``keys()``, ``values()`` and ``items()`` return lists: a snapshot, since
    programs may change the map at any time. Iterating walks keys lazily.
    """

    _per_cpu: ClassVar[bool] = False
    _batch: ClassVar[bool] = True  # the kind implements the batch commands
    _atomic_pop: ClassVar[bool] = False  # BPF_MAP_LOOKUP_AND_DELETE_ELEM works on keys
    _array_like: ClassVar[bool] = False  # keys are indexes below max_entries
    _sparse: ClassVar[bool] = False  # next-key also visits empty slots

    def __init__(self, fd: FD, **kwargs: Any) -> None:
        super().__init__(fd, **kwargs)
        self._cpus = len(possible_cpus()) if self._per_cpu else 1
        self._stride = _round8(self.value_size) if self._per_cpu else self.value_size
        self._copy_size = self._stride * self._cpus  # bytes the kernel copies per value
        self._use_batch = self._batch
        self._use_atomic_pop = self._atomic_pop

    # -- converting keys and values ------------------------------------------------

    def _key_bytes(self, key: Any) -> bytes:
        if self._array_like:
            return self._index(key)
        return self._encode(self.key_type, key, f"key for {self._label}")

    def _key_from(self, raw: bytes, offset: int = 0) -> Any:
        assert self.key_type is not None
        return self.key_type.unpack_from(raw, offset)

    def _value_bytes(self, value: Any) -> bytes:
        label = f"value for {self._label}"
        if not self._per_cpu:
            return self._encode(self.value_type, value, label)
        if self._is_per_cpu_list(value):
            if len(value) != self._cpus:
                raise ValueError(
                    f"per-CPU {label} must list {self._cpus} values (one per possible CPU), "
                    f"got {len(value)}"
                )
            parts = [self._encode(self.value_type, v, f"{label} (CPU {i})")
                     for i, v in enumerate(value)]
        else:
            parts = [self._encode(self.value_type, value, label)] * self._cpus
        buffer = bytearray(self._copy_size)
        for i, part in enumerate(parts):
            buffer[i * self._stride : i * self._stride + len(part)] = part
        return bytes(buffer)

    def _is_per_cpu_list(self, value: Any) -> bool:
        if not isinstance(value, list):
            return False
        if self.value_type is not None and self.value_type.kind == "array":
            # A flat list is one array value; a list of lists is one per CPU.
            return bool(value) and isinstance(value[0], list | tuple | BytesLike)
        return True

    def _value_from(self, raw: bytes, offset: int = 0) -> Any:
        assert self.value_type is not None
        if not self._per_cpu:
            return self.value_type.unpack_from(raw, offset)
        return [self.value_type.unpack_from(raw, offset + i * self._stride)
                for i in range(self._cpus)]

    # -- single elements ---------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        raw = syscall.map_lookup(int(self.fd), self._key_bytes(key), self._copy_size)
        if raw is None:
            raise KeyError(key)
        return self._value_from(raw)

    def get(self, key: Any, default: Any = None) -> Any:
        raw = syscall.map_lookup(int(self.fd), self._key_bytes(key), self._copy_size)
        return default if raw is None else self._value_from(raw)

    def __contains__(self, key: Any) -> bool:
        return syscall.map_lookup(int(self.fd), self._key_bytes(key), self._copy_size) is not None

    def __setitem__(self, key: Any, value: Any) -> None:
        self.put(key, value)

    def put(self, key: Any, value: Any, flags: UpdateFlag | int = UpdateFlag.ANY) -> None:
        """Store ``value``; ``flags`` NOEXIST only adds, EXIST only replaces."""
        key_bytes, value_bytes = self._key_bytes(key), self._value_bytes(value)
        with self._writing():
            syscall.map_update(int(self.fd), key_bytes, value_bytes, int(flags))

    def __delitem__(self, key: Any) -> None:
        key_bytes = self._key_bytes(key)
        with self._writing():
            if not syscall.map_delete(int(self.fd), key_bytes):
                raise KeyError(key)

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (atomically where the kind allows)."""
        key_bytes = self._key_bytes(key)
        raw = self._take(key_bytes)
        if raw is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return self._value_from(raw)

    def lookup_and_delete(self, key: Any) -> Any:
        """Like :meth:`pop` without a default: KeyError when absent."""
        return self.pop(key)

    def _take(self, key_bytes: bytes) -> bytes | None:
        fd = int(self.fd)
        with self._writing():
            if self._use_atomic_pop:
                try:
                    return syscall.map_lookup_and_delete(fd, key_bytes, self._copy_size)
                except BPFError as failure:
                    if failure.errno not in _UNSUPPORTED:
                        raise
                    self._use_atomic_pop = False
            raw = syscall.map_lookup(fd, key_bytes, self._copy_size)
            if raw is not None:
                syscall.map_delete(fd, key_bytes)
            return raw

    # -- the whole map ---------------------------------------------------------------------

    def batch_items(self, chunk: int = DEFAULT_CHUNK) -> Iterator[tuple[Any, Any]]:
        """Entries read ``chunk`` at a time with BPF_MAP_LOOKUP_BATCH.

        Raises NotSupportedError for kinds (or kernels) without batches.
        """
        for key, value in self._batch_raw(chunk):
            yield self._key_from(key), self._value_from(value)

    def walk_items(self) -> Iterator[tuple[Any, Any]]:
        """Entries read one by one (BPF_MAP_GET_NEXT_KEY, then a lookup)."""
        for key, value in self._walk_raw():
            yield self._key_from(key), self._value_from(value)

    def _batch_raw(self, chunk: int) -> Iterator[tuple[bytes, bytes]]:
        if not self._batch:
            raise NotSupportedError(
                "BPF_MAP_LOOKUP_BATCH", ENOTSUPP, f"batch lookups of {kind_name(self.type)} maps"
            )
        fd, key_size, value_size = int(self.fd), self.key_size, self._copy_size
        cursor: bytes | None = None
        count = max(1, chunk)
        while True:
            try:
                result = syscall.map_lookup_batch(fd, key_size, value_size, count, cursor)
            except BPFError as failure:
                if failure.errno == errno.ENOSPC:  # a hash bucket holds more than count
                    count *= 2
                    continue
                if failure.errno in _UNSUPPORTED:
                    raise NotSupportedError(
                        failure.command, failure.errno,
                        f"batch lookups of {kind_name(self.type)} maps",
                    ) from None
                raise
            keys, values = result.keys, result.values
            for i in range(result.count):
                yield (keys[i * key_size : (i + 1) * key_size],
                       values[i * value_size : (i + 1) * value_size])
            if result.next_batch is None:
                return
            cursor = result.next_batch

    def _walk_raw(self) -> Iterator[tuple[bytes, bytes]]:
        fd = int(self.fd)
        key = None
        while (key := syscall.map_next_key(fd, key, self.key_size)) is not None:
            value = syscall.map_lookup(fd, key, self._copy_size)
            if value is not None:  # deleted since, or an empty slot
                yield key, value

    def _raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        if self._use_batch:
            try:
                yield from self._batch_raw(DEFAULT_CHUNK)
                return
            except NotSupportedError:
                self._use_batch = False  # only ever raised before the first entry
        yield from self._walk_raw()

    def _raw_keys(self) -> Iterator[bytes]:
        if self._use_batch or self._sparse:
            for key, _ in self._raw_items():
                yield key
            return
        fd = int(self.fd)
        key = None
        while (key := syscall.map_next_key(fd, key, self.key_size)) is not None:
            yield key

    def __iter__(self) -> Iterator[Any]:
        for key in self._raw_keys():
            yield self._key_from(key)

    def __len__(self) -> int:
        return sum(1 for _ in self._raw_keys())

    def keys(self) -> list[Any]:
        return list(self)

    def values(self) -> list[Any]:
        return [self._value_from(value) for _, value in self._raw_items()]

    def items(self) -> list[tuple[Any, Any]]:
        """All entries; batched where the kind supports it, walked otherwise."""
        return [(self._key_from(k), self._value_from(v)) for k, v in self._raw_items()]

    def update(self, other: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = (), /) -> None:
        """Store every pair of ``other``, in one batch where the kind supports it."""
        pairs = other.items() if hasattr(other, "items") else other
        keys: list[bytes] = []
        values: list[bytes] = []
        for key, value in pairs:
            keys.append(self._key_bytes(key))
            values.append(self._value_bytes(value))
        fd = int(self.fd)
        with self._writing():
            if self._use_batch and len(keys) > 1:
                try:
                    syscall.map_update_batch(fd, b"".join(keys), b"".join(values), len(keys))
                    return
                except BPFError as failure:
                    if failure.errno not in _UNSUPPORTED:
                        raise
            for key_bytes, value_bytes in zip(keys, values, strict=True):
                syscall.map_update(fd, key_bytes, value_bytes)

    def clear(self) -> None:
        """Delete every entry."""
        keys = list(self._raw_keys())
        fd = int(self.fd)
        with self._writing():
            if self._use_batch and len(keys) > 1:
                try:
                    syscall.map_delete_batch(fd, b"".join(keys), len(keys))
                    return
                except BPFError as failure:
                    if failure.errno not in _UNSUPPORTED:
                        raise
            for key in keys:
                syscall.map_delete(fd, key)


class _PerCpu(KeyedMap):
    """Values are lists with one entry per possible CPU."""

    _per_cpu = True

    @property
    def cpus(self) -> int:
        """How many values each key holds (the number of possible CPUs)."""
        return self._cpus

    def sum(self, key: Any) -> Any:
        """The total over all CPUs of the value under ``key`` (see :func:`sum_per_cpu`)."""
        return sum_per_cpu(self[key])


class _HashKind(KeyedMap):
    _atomic_pop = True

    @classmethod
    def create(
        cls,
        key_type: TypeLike,
        value_type: TypeLike,
        max_entries: int,
        *,
        name: str = "",
        flags: MapFlag | int = 0,
        btf_fd: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
    ) -> Self:
        """A new map of this kind.

        ``btf_fd`` and the type ids describe key and value in loaded BTF; the
        kernel needs them when the value holds a ``bpf_spin_lock`` or timer.
        """
        return cls._create(
            as_map_type(key_type, "key"),
            as_map_type(value_type, "value"),
            max_entries,
            name=name,
            flags=flags,
            btf_fd=btf_fd,
            btf_key_type_id=btf_key_type_id,
            btf_value_type_id=btf_value_type_id,
        )


class HashMap(_HashKind):
    map_type = MapType.HASH


class PerCpuHashMap(_HashKind, _PerCpu):
    map_type = MapType.PERCPU_HASH


class LruHashMap(_HashKind):
    """A hash map that evicts the least recently used entry when full."""

    map_type = MapType.LRU_HASH


class LruPerCpuHashMap(_HashKind, _PerCpu):
    map_type = MapType.LRU_PERCPU_HASH


class _ArrayKind(KeyedMap):
    """Arrays: keys are u32 indexes below max_entries and every index exists."""

    _array_like = True

    @classmethod
    def create(
        cls,
        value_type: TypeLike,
        max_entries: int,
        *,
        name: str = "",
        flags: MapFlag | int = 0,
        btf_fd: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
    ) -> Self:
        return cls._create(
            u32,
            as_map_type(value_type, "value"),
            max_entries,
            name=name,
            flags=flags,
            btf_fd=btf_fd,
            btf_key_type_id=btf_key_type_id,
            btf_value_type_id=btf_value_type_id,
        )

    @classmethod
    def _types_for(cls, info: MapInfo, key_type: LayoutType | None,
                   value_type: LayoutType | None) -> tuple[LayoutType | None, LayoutType | None]:
        return super()._types_for(info, key_type or u32, value_type)

    def __len__(self) -> int:
        return self.max_entries

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, int) and 0 <= key < self.max_entries

    def __delitem__(self, key: Any) -> None:
        raise TypeError(
            f"elements of {self._label} cannot be deleted (arrays always hold every index); "
            "assign a zero value instead"
        )

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        raise TypeError(f"elements of {self._label} cannot be removed (it is an array)")

    def clear(self) -> None:
        """Set every element to zero."""
        zero = bytes(self._copy_size)
        indexes = range(self.max_entries)
        keys = b"".join(u32.encode(i) for i in indexes)
        fd = int(self.fd)
        with self._writing():
            try:
                syscall.map_update_batch(fd, keys, zero * self.max_entries, self.max_entries)
            except BPFError as failure:
                if failure.errno not in _UNSUPPORTED:
                    raise
                for i in indexes:
                    syscall.map_update(fd, u32.encode(i), zero)


class ArrayMap(_ArrayKind):
    map_type = MapType.ARRAY


class PerCpuArrayMap(_ArrayKind, _PerCpu):
    map_type = MapType.PERCPU_ARRAY


class LpmKey(NamedTuple):
    """A key of an LPM trie: the first ``prefixlen`` bits of ``data`` matter."""

    prefixlen: int
    data: Any


class LpmTrieMap(KeyedMap):
    """Longest-prefix-match trie (routing tables, CIDR block lists).

    Keys are :class:`LpmKey` (or ``(prefixlen, data)`` tuples, or
    ``ipaddress`` networks and addresses). A lookup returns the value of the
    longest stored prefix that matches the key; iteration yields the stored
    prefixes. The kind requires BPF_F_NO_PREALLOC, which :meth:`create` sets.
    """

    map_type = MapType.LPM_TRIE
    _probe = (8, 4, 1, MapFlag.NO_PREALLOC)
    _required_flags = MapFlag.NO_PREALLOC
    _batch = False

    def __init__(self, fd: FD, **kwargs: Any) -> None:
        super().__init__(fd, **kwargs)
        key_type = self.key_type
        assert key_type is not None
        if key_type.kind == "struct" and [f.name for f in key_type.fields] == ["prefixlen", "data"]:
            self.data_type: LayoutType = key_type.field("data").type
        else:
            self.data_type = Bytes[key_type.size - 4]

    @classmethod
    def create(
        cls,
        data_type: TypeLike,
        value_type: TypeLike,
        max_entries: int,
        *,
        name: str = "",
        flags: MapFlag | int = 0,
        btf_fd: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
    ) -> Self:
        """``data_type`` is the matched part of the key (4 for IPv4, 16 for
        IPv6, or a layout type); the kernel key adds a u32 prefix length."""
        data = as_map_type(data_type, "LPM key data")
        if data is None:
            raise ValueError("LPM key data must be at least 1 byte")
        return cls._create(
            lpm_key_type(data),
            as_map_type(value_type, "value"),
            max_entries,
            name=name,
            flags=flags,
            btf_fd=btf_fd,
            btf_key_type_id=btf_key_type_id,
            btf_value_type_id=btf_value_type_id,
        )

    @classmethod
    def _types_for(cls, info: MapInfo, key_type: LayoutType | None,
                   value_type: LayoutType | None) -> tuple[LayoutType | None, LayoutType | None]:
        if key_type is None and info.key_size > 4:
            key_type = lpm_key_type(Bytes[info.key_size - 4])
        return super()._types_for(info, key_type, value_type)

    def _key_bytes(self, key: Any) -> bytes:
        if isinstance(key, ipaddress.IPv4Network | ipaddress.IPv6Network):
            prefixlen, data = key.prefixlen, key.network_address.packed
        elif isinstance(key, ipaddress.IPv4Address | ipaddress.IPv6Address):
            prefixlen, data = 8 * len(key.packed), key.packed
        elif isinstance(key, tuple) and len(key) == 2:
            prefixlen, data = key
        else:
            raise TypeError(
                f"key for {self._label} must be LpmKey(prefixlen, data), a (prefixlen, data) "
                f"tuple or an ipaddress network or address, got {describe(key)}"
            )
        bits = 8 * self.data_type.size
        if not isinstance(prefixlen, int) or not 0 <= prefixlen <= bits:
            raise ValueError(
                f"prefix length for {self._label} must be 0..{bits}, got {prefixlen!r}"
            )
        data_bytes = self._encode(self.data_type, data, f"key data for {self._label}")
        return u32.encode(prefixlen) + data_bytes

    def _key_from(self, raw: bytes, offset: int = 0) -> LpmKey:
        return LpmKey(u32.unpack_from(raw, offset), self.data_type.unpack_from(raw, offset + 4))


@cache
def lpm_key_type(data_type: LayoutType) -> LayoutType:
    """The kernel's LPM key for ``data_type``: a u32 prefix length, then the
    data with no padding (``struct bpf_lpm_trie_key_u8``)."""
    return make_struct("LpmTrieKey", [("prefixlen", u32), ("data", data_type)],
                       packed=True)


class ProgArrayMap(KeyedMap):
    """Program table for tail calls. Store program fds (or ``Program``
    objects); reading gives the stored programs' ids."""

    map_type = MapType.PROG_ARRAY
    _array_like = True
    _sparse = True
    _batch = False

    @classmethod
    def create(cls, max_entries: int, *, name: str = "") -> Self:
        return cls._create(u32, u32, max_entries, name=name)

    @classmethod
    def _types_for(cls, info: MapInfo, key_type: LayoutType | None,
                   value_type: LayoutType | None) -> tuple[LayoutType | None, LayoutType | None]:
        return u32, u32

    def _value_bytes(self, value: Any) -> bytes:
        return _fd_value(value, self._label)


def _fd_value(value: Any, label: str) -> bytes:
    """A program or perf event given as an int fd, an FD or an object owning one."""
    fd = getattr(value, "fd", value)
    if isinstance(fd, FD | int) and not isinstance(fd, bool):
        return u32.encode(int(fd))
    raise TypeError(f"value for {label} must be a file descriptor, got {describe(value)}")


class StackTraceMap(KeyedMap):
    """Stack traces recorded by ``bpf_get_stackid``: stack id -> instruction
    pointers (innermost first). Programs fill it; user space reads and deletes."""

    map_type = MapType.STACK_TRACE
    _probe = (4, 8, 1, 0)
    _batch = False

    @classmethod
    def create(
        cls, max_entries: int, *, depth: int = 127, name: str = "", flags: MapFlag | int = 0
    ) -> Self:
        """``depth`` frames per trace, at most ``kernel.perf_event_max_stack`` (127)."""
        if depth < 1:
            raise ValueError(f"stack depth must be at least 1, got {depth}")
        return cls._create(u32, Array[u64, depth], max_entries, name=name, flags=flags)

    @classmethod
    def _types_for(cls, info: MapInfo, key_type: LayoutType | None,
                   value_type: LayoutType | None) -> tuple[LayoutType | None, LayoutType | None]:
        return super()._types_for(info, key_type or u32,
                                  value_type or Array[u64, max(1, info.value_size // 8)])

    @property
    def depth(self) -> int:
        return self.value_size // 8

    def _value_from(self, raw: bytes, offset: int = 0) -> list[int]:
        frames = super()._value_from(raw, offset)
        while frames and frames[-1] == 0:
            frames.pop()
        return frames

    def _value_bytes(self, value: Any) -> bytes:
        raise TypeError(
            f"{self._label} is filled by programs (bpf_get_stackid); "
            "user space can only read and delete"
        )


class _PushPopMap(Map):
    """Maps without keys: values go in with push and come out with pop."""

    _probe = (0, 4, 1, 0)

    @classmethod
    def create(
        cls, value_type: TypeLike, max_entries: int, *, name: str = "",
        flags: MapFlag | int = 0,
    ) -> Self:
        return cls._create(None, as_map_type(value_type, "value"), max_entries,
                           name=name, flags=flags)

    def push(self, value: Any, *, overwrite: bool = False) -> None:
        """Add ``value``; when full, ``overwrite`` drops the oldest instead of failing."""
        value_bytes = self._encode(self.value_type, value, f"value for {self._label}")
        flags = UpdateFlag.EXIST if overwrite else UpdateFlag.ANY
        with self._writing():
            syscall.map_update(int(self.fd), None, value_bytes, int(flags))

    def pop(self, default: Any = _MISSING) -> Any:
        """Remove and return the next value; IndexError when empty unless
        ``default`` is given."""
        with self._writing():
            raw = syscall.map_lookup_and_delete(int(self.fd), None, self.value_size)
        return self._result(raw, default, "pop from")

    def peek(self, default: Any = _MISSING) -> Any:
        """The value :meth:`pop` would return, left in place."""
        raw = syscall.map_lookup(int(self.fd), None, self.value_size)
        return self._result(raw, default, "peek into")

    def _result(self, raw: bytes | None, default: Any, verb: str) -> Any:
        if raw is not None:
            assert self.value_type is not None
            return self.value_type.decode(raw)
        if default is _MISSING:
            raise IndexError(f"{verb} empty {self._label}")
        return default


class QueueMap(_PushPopMap):
    """First in, first out."""

    map_type = MapType.QUEUE


class StackMap(_PushPopMap):
    """Last in, first out."""

    map_type = MapType.STACK


class RingBufMap(Map):
    """A ring buffer programs write records into (consumed by a reader
    elsewhere). Its size is a power-of-two multiple of the page size."""

    map_type = MapType.RINGBUF
    _probe = (0, 0, os.sysconf("SC_PAGE_SIZE"), 0)

    @classmethod
    def create(cls, size: int, *, name: str = "") -> Self:
        page = os.sysconf("SC_PAGE_SIZE")
        if size < page or size & (size - 1):
            fit = max(page, 1 << max(size - 1, 0).bit_length())
            raise ValueError(
                f"ring buffer size must be a power of two and a multiple of the page size "
                f"({page} bytes), got {size}; {fit} would do"
            )
        return cls._create(None, None, size, name=name)

    @property
    def size(self) -> int:
        """Bytes of record space."""
        return self.max_entries


class PerfEventArrayMap(Map):
    """Per-CPU slots of perf event fds that ``bpf_perf_event_output`` writes to.

    Slots take perf event fds (``m[cpu] = fd``); the kernel does not let
    user space read them back.
    """

    map_type = MapType.PERF_EVENT_ARRAY

    @classmethod
    def create(cls, max_entries: int | None = None, *, name: str = "") -> Self:
        """``max_entries`` defaults to one slot per possible CPU number."""
        entries = max_entries if max_entries is not None else max(possible_cpus()) + 1
        return cls._create(u32, u32, entries, name=name)

    @classmethod
    def _types_for(cls, info: MapInfo, key_type: LayoutType | None,
                   value_type: LayoutType | None) -> tuple[LayoutType | None, LayoutType | None]:
        return u32, u32

    def __setitem__(self, cpu: int, perf_fd: Any) -> None:
        key_bytes, value_bytes = self._index(cpu), _fd_value(perf_fd, self._label)
        with self._writing():
            syscall.map_update(int(self.fd), key_bytes, value_bytes)

    def __delitem__(self, cpu: int) -> None:
        key_bytes = self._index(cpu)
        with self._writing():
            if not syscall.map_delete(int(self.fd), key_bytes):
                raise KeyError(cpu)


__all__ = [
    "DEFAULT_CHUNK",
    "ArrayMap",
    "HashMap",
    "KeyedMap",
    "LpmKey",
    "LpmTrieMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "Map",
    "MapInfo",
    "MapSpec",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "PerfEventArrayMap",
    "ProgArrayMap",
    "QueueMap",
    "RingBufMap",
    "StackMap",
    "StackTraceMap",
    "create_map",
    "kind_name",
    "lpm_key_type",
    "read_map_info",
    "sum_per_cpu",
]
