"""Consuming a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) from user space.

The kernel exposes a ring buffer through ``mmap`` of its map descriptor
(``Documentation/bpf/ringbuf.rst``, ``kernel/bpf/ringbuf.c``):

* page 0, the *consumer page*, mapped read-write: ``consumer_pos`` (u64) at
  offset 0, the only word user space writes;
* page 1, the *producer page*, mapped read-only: ``producer_pos`` (u64);
* then the data area, mapped **twice** back to back, so a record that wraps
  past the end of the ring still reads as one contiguous slice.

Each record starts with an 8-byte header: a u32 length whose top bits are
flags (:data:`BPF_RINGBUF_BUSY_BIT`: reserved but not yet submitted, stop
here; :data:`BPF_RINGBUF_DISCARD_BIT`: skip it), then a u32 page offset that
only the kernel uses. Header plus payload is rounded up to 8 bytes.

Memory ordering: positions and headers are read and ``consumer_pos`` written
as single aligned 8- or 4-byte accesses through memoryviews. On x86-64 (total
store order) those are acquire loads and release stores, which is what the
protocol asks for; weaker architectures get no explicit fences from Python.

Dropped events
--------------
The kernel does not count failed reservations: when the ring is full,
``bpf_ringbuf_reserve`` returns NULL (``bpf_ringbuf_output`` a negative
errno) and the event is gone without a trace. pykex programs therefore count
drops themselves, by this convention:

* the program owns a counter map, a ``PERCPU_ARRAY`` (cheapest: no atomic
  needed) or an ``ARRAY``, whose value starts with a u64 at key 0;
* whenever ``bpf_ringbuf_reserve`` returns NULL or ``bpf_ringbuf_output``
  fails, the program adds 1 to that u64 (an atomic add in a plain ``ARRAY``);
* the consumer is given the counter map as ``drops=`` and reports
  :attr:`RingBuffer.dropped` (summed over CPUs) next to
  :attr:`RingBuffer.received`.

With the convention kept, every event the program tried to emit is either
received or counted: ``received + dropped`` equals the number of attempts
once the ring is drained.
"""

from __future__ import annotations

import mmap
import os
import select
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pykex.layout import LayoutType

from . import syscall
from .cpus import possible_cpu_count
from .fd import FD
from .uapi import MapInfo, MapType

BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8

_LENGTH_MASK = ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT) & 0xFFFFFFFF
# The longest single epoll wait, in seconds (see wait_then_consume).
_MAX_WAIT = 0.25


class HasFD(Protocol):
    """A pykex object that owns a kernel descriptor (a map, an :class:`FD`)."""

    @property
    def fd(self) -> Any: ...


MapLike = int | FD | HasFD
Decoder = Callable[[bytes], Any]


def map_fd(obj: MapLike) -> int:
    """The raw descriptor of a map given as an int, an :class:`FD` or an object with ``.fd``."""
    if isinstance(obj, int | FD):
        return int(obj)
    fd = getattr(obj, "fd", None)
    if fd is None:
        raise TypeError(f"expected a map descriptor or an object with .fd, got {obj!r}")
    return int(fd)


def map_info(obj: MapLike) -> MapInfo:
    """What the kernel reports about a map: type, sizes, name."""
    info = MapInfo()
    syscall.obj_info(map_fd(obj), info)
    return info


def decoder_for(decode: Any, *, padded: bool = False) -> Decoder | None:
    """How to turn a record's bytes into a value.

    ``None`` keeps bytes; a :mod:`pykex.layout` type (a ``Struct`` subclass,
    ``u64``, ``Array[...]``) decodes records of exactly its size, or with
    ``padded`` of its size plus perf's alignment padding; any other callable
    is called with the bytes.
    """
    if decode is None:
        return None
    if isinstance(decode, LayoutType):
        layout = decode
        size = layout.size
        # perf pads the raw data so that it plus its u32 length is 8-byte aligned.
        expected = ((size + 4 + 7) & ~7) - 4 if padded else size

        def decode_layout(data: bytes) -> Any:
            if len(data) != expected:
                raise ValueError(
                    f"a record of {len(data)} bytes cannot be a {layout.name} ({size} bytes)"
                )
            return layout.unpack_from(data, 0)

        return decode_layout
    if callable(decode):
        return decode
    raise TypeError(f"decode must be a layout type or a callable taking bytes, got {decode!r}")


class DropCounter:
    """Reads the u64 drop counter at ``key`` of an ARRAY or PERCPU_ARRAY map."""

    def __init__(self, counter_map: MapLike, key: int = 0) -> None:
        info = map_info(counter_map)
        if info.type not in (MapType.ARRAY, MapType.PERCPU_ARRAY) or info.value_size < 8:
            raise ValueError(
                "a drop counter must be an ARRAY or PERCPU_ARRAY map with a u64 value, "
                f"not a {_type_name(info.type)} map with {info.value_size}-byte values"
            )
        self._fd = FD(os.dup(map_fd(counter_map)), "drop counter map")
        self._key = struct.pack("<I", key)
        self._per_cpu = info.type == MapType.PERCPU_ARRAY
        # A per-CPU lookup returns one 8-byte aligned slot per possible CPU.
        self._stride = (info.value_size + 7) & ~7
        self._value_size = self._stride * possible_cpu_count() if self._per_cpu else info.value_size

    def read(self) -> int:
        value = syscall.map_lookup(int(self._fd), self._key, self._value_size)
        if value is None:
            raise KeyError(f"drop counter key {struct.unpack('<I', self._key)[0]} is out of range")
        if not self._per_cpu:
            return struct.unpack_from("<Q", value)[0]
        return sum(
            struct.unpack_from("<Q", value, offset)[0]
            for offset in range(0, len(value), self._stride)
        )

    def close(self) -> None:
        self._fd.close()


def _type_name(map_type: int) -> str:
    try:
        return MapType(map_type).name
    except ValueError:
        return f"type-{map_type}"


class RingBuffer:
    """The consumer side of one ring buffer map.

    ``ring`` is the map (a descriptor or anything with ``.fd``); ``decode``
    turns each record into a value (see :func:`decoder_for`); ``drops`` is the
    program's drop counter map (see the module docstring).

    Three ways to consume, all returning records in the order they were
    reserved: ``for record in rb.records(timeout=1.0)`` (iterate until nothing
    arrives for ``timeout`` seconds), ``rb.poll(callback, timeout)`` (wait once,
    hand everything available to ``callback``) and ``rb.drain()`` (everything
    available now, no waiting). A record counts as consumed before the
    callback sees it, so a callback that raises does not see it again. One
    thread at a time may consume.
    """

    def __init__(
        self, ring: MapLike, *, decode: Any = None, drops: MapLike | None = None
    ) -> None:
        info = map_info(ring)
        if info.type != MapType.RINGBUF:
            raise ValueError(f"expected a RINGBUF map, got a {_type_name(info.type)} map")
        self.size = info.max_entries
        self._mask = self.size - 1
        self.name = info.name.decode()
        self._decode = decoder_for(decode)
        self._drops = DropCounter(drops) if drops is not None else None
        self.received = 0
        # Our own descriptor, so the caller may close theirs; the mappings and
        # epoll registrations then stay valid.
        self._fd = FD(os.dup(map_fd(ring)), f"ring buffer {self.name}")
        page = mmap.PAGESIZE
        try:
            self._consumer_map = mmap.mmap(
                int(self._fd), page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
            try:
                self._producer_map = mmap.mmap(
                    int(self._fd), page + 2 * self.size, mmap.MAP_SHARED, mmap.PROT_READ,
                    offset=page,
                )
            except OSError:
                self._consumer_map.close()
                raise
        except OSError as failure:
            self._fd.close()
            if self._drops is not None:
                self._drops.close()
            raise OSError(
                failure.errno, f"cannot map ring buffer {self.name!r}: {failure.strerror}"
            ) from None
        self._consumer_pos = memoryview(self._consumer_map).cast("Q")
        producer = memoryview(self._producer_map)
        self._producer_pos = producer[:8].cast("Q")
        self._data = producer[page:]
        self._headers = self._data.cast("I")
        self._epoll: select.epoll | None = None

    # -- reading -------------------------------------------------------------

    def fileno(self) -> int:
        """The map descriptor, pollable for EPOLLIN when records are available."""
        return int(self._fd)

    @property
    def dropped(self) -> int:
        """Events the program could not reserve room for (0 without a drop counter)."""
        return self._drops.read() if self._drops is not None else 0

    @property
    def pending_bytes(self) -> int:
        """Bytes between the consumer and producer positions."""
        return self._producer_pos[0] - self._consumer_pos[0]

    def consume(self, callback: Callable[[Any], object]) -> int:
        """Hand every record available now to ``callback``; returns how many."""
        consumed = 0
        consumer = self._consumer_pos[0]
        while True:
            producer = self._producer_pos[0]
            progressed = False
            while consumer < producer:
                offset = consumer & self._mask
                header = self._headers[offset >> 2]
                if header & BPF_RINGBUF_BUSY_BIT:
                    break  # reserved, not yet submitted; records after it wait too
                length = header & _LENGTH_MASK
                start = offset + BPF_RINGBUF_HDR_SZ
                record = None
                if not header & BPF_RINGBUF_DISCARD_BIT:
                    # Copy before releasing the space: the producer may reuse it.
                    record = bytes(self._data[start : start + length])
                consumer += (length + BPF_RINGBUF_HDR_SZ + 7) & ~7
                self._consumer_pos[0] = consumer
                progressed = True
                if record is not None:
                    consumed += 1
                    self.received += 1
                    callback(self._decode(record) if self._decode else record)
            if not progressed:
                return consumed

    def drain(self) -> list[Any]:
        """Every record available now, without waiting."""
        records: list[Any] = []
        self.consume(records.append)
        return records

    def poll(self, callback: Callable[[Any], object], timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: forever) for records, then hand
        everything available to ``callback``; returns how many records."""
        return wait_then_consume(self._waiter(), lambda: self.consume(callback), timeout)

    def records(self, timeout: float | None = None) -> Iterator[Any]:
        """Yield records as they arrive; stop once none arrived for ``timeout`` seconds."""
        batch: list[Any] = []
        waiter = self._waiter()
        while wait_then_consume(waiter, lambda: self.consume(batch.append), timeout):
            yield from batch
            batch.clear()

    def _waiter(self) -> select.epoll:
        if self._epoll is None:
            self._epoll = select.epoll()
            self._epoll.register(int(self._fd), select.EPOLLIN)
        return self._epoll

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        if self._fd.closed:
            return
        if self._epoll is not None:
            self._epoll.close()
        for view in (self._headers, self._data, self._producer_pos, self._consumer_pos):
            view.release()
        self._producer_map.close()
        self._consumer_map.close()
        if self._drops is not None:
            self._drops.close()
        self._fd.close()

    def __enter__(self) -> RingBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RingBuffer {self.name or '?'} {self.size} bytes, received {self.received}>"


def wait_then_consume(
    epoll: select.epoll, consume: Callable[[], int], timeout: float | None
) -> int:
    """Consume what is there; if nothing, wait on ``epoll`` until something is
    consumed or ``timeout`` seconds pass. Returns how many records."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        handled = consume()
        if handled:
            return handled
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return 0
        # A wake-up may bring only discarded records, hence the loop. And one
        # can be missed: the producer wakes the consumer only if it sees the
        # consumer caught up, and without a fence from Python our store of
        # consumer_pos may become visible after we last read the header. So
        # no single wait is unbounded: a missed wake-up costs latency, never
        # a hang.
        epoll.poll(_MAX_WAIT if left is None else min(left, _MAX_WAIT))


class RingBufferReader:
    """Several ring buffers in one epoll set, each with its own callback.

    An extension typically has an error channel beside its event stream; one
    reader waits on both::

        reader = RingBufferReader()
        reader.add(ext.errors, report_exception)
        reader.add(ext.events, handle_event, decode=Event, drops=ext.event_drops)
        while running:
            reader.poll(timeout=0.5)
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._rings: dict[int, tuple[RingBuffer, Callable[[Any], object]]] = {}

    def add(
        self,
        ring: MapLike,
        callback: Callable[[Any], object],
        *,
        decode: Any = None,
        drops: MapLike | None = None,
    ) -> RingBuffer:
        """Watch ``ring``; its records go to ``callback``. Returns the consumer."""
        consumer = RingBuffer(ring, decode=decode, drops=drops)
        self._epoll.register(consumer.fileno(), select.EPOLLIN)
        self._rings[consumer.fileno()] = (consumer, callback)
        return consumer

    @property
    def rings(self) -> list[RingBuffer]:
        return [consumer for consumer, _ in self._rings.values()]

    def drain(self) -> int:
        """Consume what every ring holds now; returns how many records."""
        return sum(consumer.consume(callback) for consumer, callback in self._rings.values())

    def poll(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds for any ring, then drain all; returns how many."""
        if not self._rings:
            raise ValueError("the reader has no ring buffers; add() one first")
        return wait_then_consume(self._epoll, self.drain, timeout)

    def run(self, duration: float) -> int:
        """Keep consuming for ``duration`` seconds; returns how many records."""
        deadline = time.monotonic() + duration
        handled = 0
        while (left := deadline - time.monotonic()) > 0:
            handled += self.poll(left)
        return handled

    def close(self) -> None:
        for consumer, _ in self._rings.values():
            consumer.close()
        self._rings.clear()
        self._epoll.close()

    def __enter__(self) -> RingBufferReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
