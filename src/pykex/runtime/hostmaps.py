"""Typed views of the maps host mode emulates, shaped like :mod:`pykex.kernel.maps`.

A view reads and writes the :class:`~pykex.ir.interp.HostMap` the interpreter
runs against, converting keys and values with the map's layout types, so
``ext.stats[6]`` is the same ``Counter`` in host mode as in the kernel, per-CPU
kinds give one value per possible CPU, arrays hold every index and refuse
deletion, a full hash map refuses new keys, an LPM trie answers with its
longest matching prefix and a stack trace map gives its stacks without the
trailing zeros. Ring buffers and perf event arrays get a
:class:`HostEventView`, which reads the records the programs sent.
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

from pykex.ir.interp import ARRAY_KINDS, BPF_ANY, HostMap
from pykex.kernel.errors import BPFError
from pykex.kernel.maps import LpmKey, sum_per_cpu
from pykex.kernel.ringbuf import decoder_for
from pykex.layout import Bytes, LayoutError, LayoutType, as_layout_type, u8, u16, u32, u64
from pykex.layout.types import BytesLike, describe

_MISSING: Any = object()


def _layout(declared: object, size: int, what: str) -> LayoutType:
    if declared is not None:
        return as_layout_type(declared, what)
    return {1: u8, 2: u16, 4: u32, 8: u64}.get(size) or Bytes[size]


def record_decoder(decode: Any, record_type: object, perf: bool) -> Callable[[bytes], Any]:
    """How an extension's event view turns records into values: ``decode`` (a
    layout type or a callable) if given, else the map's record type, else bytes.
    Perf samples carry perf's alignment padding."""
    chosen = decode if decode is not None else record_type
    if chosen is None:
        return bytes
    if not isinstance(chosen, LayoutType) and not callable(chosen):
        chosen = as_layout_type(chosen, "record type")
    decoder = decoder_for(chosen, padded=perf)
    assert decoder is not None
    return decoder


class HostEventView:
    """The records a host-mode ring buffer or perf event array received.

    Shaped like the kernel extension's view: :meth:`drain` takes what is
    there, :meth:`records` yields it (nothing arrives while it waits: programs
    run only when called), ``drops`` counts the records the map had no room
    for. Records decode with the map's record type when the compiler knows
    it (bytes otherwise), or with ``decode``.
    """

    def __init__(self, host: HostMap, drops: Callable[[], int]) -> None:
        self.host = host
        self.name = host.decl.name
        self.kind = host.decl.kind
        self.record_type = host.decl.record_type
        self._drops = drops

    @property
    def drops(self) -> int:
        return self._drops()

    def drain(self, decode: Any = None) -> list[Any]:
        """Every record received so far, oldest first; they are consumed."""
        convert = record_decoder(decode, self.record_type, self.kind == "PERF_EVENT_ARRAY")
        return [convert(record) for record in self.host.take_records()]

    def records(self, timeout: float | None = 0.0, decode: Any = None) -> Iterator[Any]:
        """Yield the records received so far (``timeout`` is accepted for
        symmetry with the kernel view; no record can arrive meanwhile)."""
        yield from self.drain(decode)

    def __repr__(self) -> str:
        return f"<HostEventView {self.name!r} {self.kind.lower()}, {len(self.host.records)} held>"


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
        self._lpm = decl.kind == "LPM_TRIE"
        self._label = f"map {decl.name!r}"
        self._lpm_data: LayoutType = Bytes[max(self.key_type.size - 4, 1)]
        if self._lpm and self.key_type.kind == "struct" and [
                f.name for f in self.key_type.fields] == ["prefixlen", "data"]:
            self._lpm_data = self.key_type.field("data").type

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

    def _lpm_key(self, key: Any) -> bytes:
        """The kernel view's key forms: LpmKey or (prefixlen, data) tuples, and
        ipaddress networks and addresses."""
        if isinstance(key, ipaddress.IPv4Network | ipaddress.IPv6Network):
            prefixlen, data = key.prefixlen, key.network_address.packed
        elif isinstance(key, ipaddress.IPv4Address | ipaddress.IPv6Address):
            prefixlen, data = 8 * len(key.packed), key.packed
        elif isinstance(key, tuple) and len(key) == 2:
            prefixlen, data = key
        else:
            return self._encode(self.key_type, key, f"key for {self._label}")
        bits = 8 * self._lpm_data.size
        if not isinstance(prefixlen, int) or not 0 <= prefixlen <= bits:
            raise ValueError(
                f"prefix length for {self._label} must be 0..{bits}, got {prefixlen!r}"
            )
        return u32.encode(prefixlen) + self._encode(self._lpm_data, data,
                                                    f"key data for {self._label}")

    def _decode_key(self, raw: bytes) -> Any:
        if self._lpm:
            return LpmKey(u32.unpack_from(raw, 0), self._lpm_data.unpack_from(raw, 4))
        return self.key_type.decode(raw)

    def _key(self, key: Any) -> bytes:
        if self._lpm:
            return self._lpm_key(key)
        if self._array and isinstance(key, int) and not 0 <= key < self.max_entries:
            raise IndexError(
                f"index {key} out of range for {self._label} ({self.max_entries} entries)"
            )
        return self._encode(self.key_type, key, f"key for {self._label}")

    def _values(self, value: Any) -> list[bytes]:
        label = f"value for {self._label}"
        if self.kind == "PROG_ARRAY":  # a program, stored as its id (see HostProgram.id)
            value = getattr(value, "id", value)
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
        if self.kind == "STACK_TRACE":  # as the kernel view: the frames, not the padding
            values = [_without_trailing_zeros(frames) for frames in values]
        return values if self.per_cpu else values[0]

    # -- the mapping protocol ---------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        slots = self.host.find(self._key(key))
        if slots is None:
            raise KeyError(key)
        return self._decode(slots)

    def get(self, key: Any, default: Any = None) -> Any:
        slots = self.host.find(self._key(key))
        return default if slots is None else self._decode(slots)

    def __contains__(self, key: Any) -> bool:
        if self._array:
            return isinstance(key, int) and 0 <= key < self.max_entries
        return self.host.find(self._key(key)) is not None

    def __setitem__(self, key: Any, value: Any) -> None:
        if self.kind == "STACK_TRACE":
            raise TypeError(f"{self._label} is filled by programs (bpf_get_stackid); "
                            "user space can only read and delete")
        key_bytes = self._key(key)
        values = self._values(value)
        if self.per_cpu and key_bytes in self.host.entries:
            slots = self.host.entries[key_bytes]
            for slot, data in zip(slots, values, strict=True):
                slot[:] = data
            return
        for cpu, data in enumerate(values):
            result = self.host.update(key_bytes, data, BPF_ANY, cpu)
            if result == -errno.E2BIG or result == -errno.ENOSPC:
                raise BPFError("BPF_MAP_UPDATE_ELEM", -result,
                               f"{self._label} is full ({self.max_entries} entries)")
            if result:
                raise BPFError("BPF_MAP_UPDATE_ELEM", -result, f"updating {self._label}")

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
        return [self._decode_key(key) for key in self.host.entries]

    def values(self) -> list[Any]:
        return [self._decode(slots) for slots in self.host.entries.values()]

    def items(self) -> list[tuple[Any, Any]]:
        return [(self._decode_key(key), self._decode(slots))
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


def _without_trailing_zeros(frames: list[int]) -> list[int]:
    while frames and frames[-1] == 0:
        frames.pop()
    return frames
