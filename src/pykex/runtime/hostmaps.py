"""Typed views of the maps host mode emulates, shaped like :mod:`pykex.kernel.maps`.

A view reads and writes the :class:`~pykex.ir.interp.HostMap` the interpreter
runs against, converting keys and values with the map's layout types, so
``ext.stats[6]`` is the same ``Counter`` in host mode as in the kernel, per-CPU
kinds give one value per possible CPU, arrays hold every index and refuse
deletion, and a full hash map refuses new keys.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

from pykex.ir.interp import ARRAY_KINDS, BPF_ANY, HostMap
from pykex.kernel.errors import BPFError
from pykex.kernel.maps import sum_per_cpu
from pykex.layout import Bytes, LayoutError, LayoutType, as_layout_type, u8, u16, u32, u64
from pykex.layout.types import BytesLike, describe

_MISSING: Any = object()


def _layout(declared: object, size: int, what: str) -> LayoutType:
    if declared is not None:
        return as_layout_type(declared, what)
    return {1: u8, 2: u16, 4: u32, 8: u64}.get(size) or Bytes[size]


class HostMapView:
    """The emulated map ``host`` seen through its key and value types."""

    def __init__(self, host: HostMap) -> None:
        decl = host.decl
        self.host = host
        self.name = decl.name
        self.kind = decl.kind
        self.max_entries = decl.max_entries
        self.key_type = _layout(decl.key_type, decl.key_size, f"key of map {decl.name!r}")
        self.value_type = _layout(decl.value_type, decl.value_size, f"value of map {decl.name!r}")
        self.per_cpu = host.per_cpu
        self._array = decl.kind in ARRAY_KINDS
        self._label = f"map {decl.name!r}"

    @property
    def cpus(self) -> int:
        """How many values each key holds (1 unless the kind is per-CPU)."""
        return self.host.cpus if self.per_cpu else 1

    def __repr__(self) -> str:
        return (
            f"<HostMapView {self.name!r} {self.kind.lower()} {self.key_type.name} -> "
            f"{self.value_type.name}, {self.max_entries} entries>"
        )

    # -- conversions ----------------------------------------------------------------

    def _encode(self, t: LayoutType, value: Any, label: str) -> bytes:
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

    def _key(self, key: Any) -> bytes:
        if self._array and isinstance(key, int) and not 0 <= key < self.max_entries:
            raise IndexError(
                f"index {key} out of range for {self._label} ({self.max_entries} entries)"
            )
        return self._encode(self.key_type, key, f"key for {self._label}")

    def _values(self, value: Any) -> list[bytes]:
        label = f"value for {self._label}"
        if not self.per_cpu:
            return [self._encode(self.value_type, value, label)]
        if isinstance(value, list) and not (
            self.value_type.kind == "array" and value and not isinstance(value[0], list | tuple)
        ):
            if len(value) != self.cpus:
                raise ValueError(
                    f"per-CPU {label} must list {self.cpus} values (one per possible CPU), "
                    f"got {len(value)}"
                )
            return [self._encode(self.value_type, v, f"{label} (CPU {i})")
                    for i, v in enumerate(value)]
        return [self._encode(self.value_type, value, label)] * self.cpus

    def _decode(self, slots: list[bytearray]) -> Any:
        values = [self.value_type.decode(bytes(slot)) for slot in slots]
        return values if self.per_cpu else values[0]

    # -- the mapping protocol ---------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        slots = self.host.entries.get(self._key(key))
        if slots is None:
            raise KeyError(key)
        return self._decode(slots)

    def get(self, key: Any, default: Any = None) -> Any:
        slots = self.host.entries.get(self._key(key))
        return default if slots is None else self._decode(slots)

    def __contains__(self, key: Any) -> bool:
        if self._array:
            return isinstance(key, int) and 0 <= key < self.max_entries
        return self._key(key) in self.host.entries

    def __setitem__(self, key: Any, value: Any) -> None:
        key_bytes = self._key(key)
        values = self._values(value)
        if key_bytes not in self.host.entries:
            result = self.host.update(key_bytes, values[0], BPF_ANY, 0)
            if result == -errno.E2BIG:
                raise BPFError("BPF_MAP_UPDATE_ELEM", errno.E2BIG,
                               f"{self._label} is full ({self.max_entries} entries)")
        slots = self.host.entries[key_bytes]
        for slot, data in zip(slots, values, strict=True):
            slot[:] = data

    def __delitem__(self, key: Any) -> None:
        if self._array:
            raise TypeError(
                f"elements of {self._label} cannot be deleted (arrays always hold every index); "
                "assign a zero value instead"
            )
        if self.host.delete(self._key(key)) != 0:
            raise KeyError(key)

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        if self._array:
            raise TypeError(f"elements of {self._label} cannot be removed (it is an array)")
        slots = self.host.entries.pop(self._key(key), None)
        if slots is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return self._decode(slots)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.host.entries)

    def keys(self) -> list[Any]:
        return [self.key_type.decode(key) for key in self.host.entries]

    def values(self) -> list[Any]:
        return [self._decode(slots) for slots in self.host.entries.values()]

    def items(self) -> list[tuple[Any, Any]]:
        return [(self.key_type.decode(key), self._decode(slots))
                for key, slots in self.host.entries.items()]

    def clear(self) -> None:
        """Remove every key (arrays: set every element to zero)."""
        if not self._array:
            self.host.entries.clear()
            return
        for slots in self.host.entries.values():
            for slot in slots:
                slot[:] = bytes(len(slot))

    def sum(self, key: Any) -> Any:
        """The total over all CPUs of a per-CPU map's value under ``key``."""
        if not self.per_cpu:
            raise TypeError(f"{self._label} is not a per-CPU map")
        return sum_per_cpu(self[key])
