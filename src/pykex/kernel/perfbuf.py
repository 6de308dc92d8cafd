"""Consuming a perf event array (BPF_MAP_TYPE_PERF_EVENT_ARRAY) from user space.

``bpf_perf_event_output`` writes into a perf ring buffer, one per CPU. The
consumer opens one software event per online CPU (``PERF_COUNT_SW_BPF_OUTPUT``,
sampling every output, raw samples, a wake-up per sample), maps its buffer
(one metadata page then 2^n data pages), and stores the event's descriptor in
the map at that CPU's index, where the helper looks it up.

Each buffer holds ``perf_event_header``-framed records between ``data_tail``
(ours) and ``data_head`` (the kernel's), wrapping at the end of the data area.
``PERF_RECORD_SAMPLE`` carries the program's bytes; ``PERF_RECORD_LOST`` says
how many samples did not fit, and is summed into :attr:`PerfBuffer.lost`. The
kernel writes that LOST record only once room frees up again, at the next
sample that fits, so ``lost`` catches up with the truth one sample late.

A sample's payload is what the program passed, followed by up to 7 bytes of
padding: perf keeps the raw field plus its u32 size 8-byte aligned. Layout
types given as ``decode`` allow for it; plain callables see the padding.

Compared with :mod:`.ringbuf`, perf buffers are per CPU (no order across
CPUs), copy the data twice and count losses in the kernel; prefer ring
buffers where the kernel has them.
"""

from __future__ import annotations

import mmap
import os
import select
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import perf, syscall
from .cpus import online_cpus
from .fd import FD
from .ringbuf import MapLike, decoder_for, map_fd, map_info, wait_then_consume
from .uapi import MapType

PERF_SAMPLE_RAW = 1 << 10
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

# struct perf_event_mmap_page: offsets of data_head and data_tail.
_DATA_HEAD = 1024
_DATA_TAIL = 1032
_HEADER = struct.Struct("<IHH")  # perf_event_header: type, misc, size
_LOST = struct.Struct("<QQ")  # id, lost
_RAW_SIZE = struct.Struct("<I")


class _CpuBuffer:
    """The perf event and mapped buffer of one CPU."""

    def __init__(self, cpu: int, pages: int) -> None:
        self.cpu = cpu
        attr = perf.PerfEventAttr(
            type=perf.PerfType.SOFTWARE,
            config=perf.SoftwareEvent.BPF_OUTPUT,
            sample_period=1,
            sample_type=PERF_SAMPLE_RAW,
            wakeup_events=1,
        )
        self.fd = perf.perf_event_open(attr, pid=-1, cpu=cpu, what=f"bpf output on CPU {cpu}")
        self.size = pages * mmap.PAGESIZE
        try:
            self._map = mmap.mmap(
                int(self.fd), mmap.PAGESIZE + self.size, mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
            )
        except OSError as failure:
            self.fd.close()
            raise OSError(
                failure.errno, f"cannot map the perf buffer of CPU {cpu}: {failure.strerror}"
            ) from None
        meta = memoryview(self._map)
        self._head = meta[_DATA_HEAD : _DATA_HEAD + 8].cast("Q")
        self._tail = meta[_DATA_TAIL : _DATA_TAIL + 8].cast("Q")
        self._data = meta[mmap.PAGESIZE :]

    def _copy(self, position: int, length: int) -> bytes:
        """``length`` bytes from ring ``position``, joining the two pieces of a wrap."""
        start = position % self.size
        end = start + length
        if end <= self.size:
            return bytes(self._data[start:end])
        return bytes(self._data[start:]) + bytes(self._data[: end - self.size])

    def consume(
        self, on_sample: Callable[[bytes], object], on_lost: Callable[[int], object]
    ) -> int:
        """Hand every sample to ``on_sample`` and every loss count to ``on_lost``."""
        samples = 0
        tail = self._tail[0]
        while True:
            head = self._head[0]
            if tail == head:
                return samples
            while tail < head:
                # Records are 8-byte aligned and so is the data area: headers never wrap.
                kind, _, size = _HEADER.unpack_from(self._data, tail % self.size)
                body = self._copy(tail + _HEADER.size, size - _HEADER.size)
                tail += size
                # Release the space only after copying out of it.
                self._tail[0] = tail
                if kind == PERF_RECORD_SAMPLE:
                    (raw_size,) = _RAW_SIZE.unpack_from(body)
                    samples += 1
                    on_sample(body[_RAW_SIZE.size : _RAW_SIZE.size + raw_size])
                elif kind == PERF_RECORD_LOST:
                    on_lost(_LOST.unpack_from(body)[1])

    def close(self) -> None:
        for view in (self._head, self._tail, self._data):
            view.release()
        self._map.close()
        self.fd.close()


class PerfBuffer:
    """The consumer side of a perf event array: one buffer per online CPU.

    ``events`` is the PERF_EVENT_ARRAY map (a descriptor or anything with
    ``.fd``); ``pages`` the data pages per CPU (a power of two); ``decode``
    turns each sample into a value (a :mod:`pykex.layout` type or a callable).
    ``on_lost`` is called with ``(cpu, count)`` for every loss report.

    Consume like a ring buffer: ``records(timeout)``, ``poll(callback,
    timeout)`` or ``drain()``. Samples of one CPU arrive in order; samples of
    different CPUs interleave in no defined order.
    """

    def __init__(
        self,
        events: MapLike,
        *,
        pages: int = 8,
        decode: Any = None,
        on_lost: Callable[[int, int], object] | None = None,
        cpus: Sequence[int] | None = None,
    ) -> None:
        if pages <= 0 or pages & (pages - 1):
            raise ValueError(f"pages per CPU must be a power of two, not {pages}")
        info = map_info(events)
        if info.type != MapType.PERF_EVENT_ARRAY:
            try:
                kind = MapType(info.type).name
            except ValueError:
                kind = f"type-{info.type}"
            raise ValueError(f"expected a PERF_EVENT_ARRAY map, got a {kind} map")
        cpus = list(cpus) if cpus is not None else online_cpus()
        if not cpus:
            raise ValueError("a perf buffer needs at least one CPU")
        if max(cpus) >= info.max_entries:
            raise ValueError(
                f"the perf event array has {info.max_entries} entries but CPU {max(cpus)} "
                "needs one; create it with max_entries = the number of possible CPUs"
            )
        self.name = info.name.decode()
        self._decode = decoder_for(decode, padded=True)
        self._on_lost = on_lost
        self.received = 0
        self.lost = 0
        self._map = FD(os.dup(map_fd(events)), f"perf event array {self.name}")
        self._buffers: dict[int, _CpuBuffer] = {}
        self._epoll = select.epoll()
        try:
            for cpu in cpus:
                buffer = _CpuBuffer(cpu, pages)
                self._buffers[cpu] = buffer
                self._epoll.register(int(buffer.fd), select.EPOLLIN)
                syscall.map_update(
                    int(self._map), struct.pack("<I", cpu), struct.pack("<I", int(buffer.fd))
                )
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        """An epoll descriptor that is readable when any CPU's buffer has data."""
        return self._epoll.fileno()

    @property
    def cpus(self) -> list[int]:
        return list(self._buffers)

    def _count_lost(self, cpu: int) -> Callable[[int], None]:
        def count(lost: int) -> None:
            self.lost += lost
            if self._on_lost is not None:
                self._on_lost(cpu, lost)

        return count

    def consume(self, callback: Callable[[Any], object]) -> int:
        """Hand every sample available now, CPU by CPU, to ``callback``; returns how many."""

        def deliver(raw: bytes) -> None:
            self.received += 1
            callback(self._decode(raw) if self._decode else raw)

        return sum(
            buffer.consume(deliver, self._count_lost(cpu))
            for cpu, buffer in self._buffers.items()
        )

    def drain(self) -> list[Any]:
        """Every sample available now, without waiting."""
        samples: list[Any] = []
        self.consume(samples.append)
        return samples

    def poll(self, callback: Callable[[Any], object], timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: forever) for samples, then hand
        everything available to ``callback``; returns how many samples."""
        return wait_then_consume(self._epoll, lambda: self.consume(callback), timeout)

    def records(self, timeout: float | None = None) -> Iterator[Any]:
        """Yield samples as they arrive; stop once none arrived for ``timeout`` seconds."""
        batch: list[Any] = []
        while wait_then_consume(self._epoll, lambda: self.consume(batch.append), timeout):
            yield from batch
            batch.clear()

    def close(self) -> None:
        """Remove our events from the map, unmap the buffers and close everything."""
        if self._map.closed:
            return
        for cpu, buffer in self._buffers.items():
            syscall.map_delete(int(self._map), struct.pack("<I", cpu))
            buffer.close()
        self._buffers.clear()
        self._epoll.close()
        self._map.close()

    def __enter__(self) -> PerfBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<PerfBuffer {self.name or '?'} on {len(self._buffers)} CPUs, "
            f"received {self.received}, lost {self.lost}>"
        )
