"""The runtime side of generated code: frames, the error channel, exception sites.

Every module gets three runtime maps besides its own:

* ``.errors``: a 64 KiB ring buffer; each raised exception writes one
  :data:`ERROR_RECORD` (``u32 site_id, u32 program_index, u64 args[4]``);
* ``.errors_lost``: a per-CPU ``u64`` counting records the ring could not take;
* ``.exc_count``: a per-CPU ``u64`` per exception site (key = site id).

and one frame map per program (``<program>.frame``): a one-element per-CPU
array whose value holds the scalars register allocation spilled, then the
program's locals, then the scratch area in which the exception record is
assembled.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pykex.ir.nodes import Loc, MapDecl
from pykex.layout import u32, u64

ERRORS_MAP = ".errors"
ERRORS_LOST_MAP = ".errors_lost"
EXC_COUNT_MAP = ".exc_count"
ERRORS_RING_SIZE = 64 * 1024
ERROR_RECORD = struct.Struct("<II4Q")
MAX_RAISE_ARGS = 4
MAP_NAME_LENGTH = 15  # BPF_OBJ_NAME_LEN minus the terminating NUL


@dataclass(frozen=True)
class ExceptionSite:
    """One ``Raise`` in the generated code; ``id`` is module-wide."""

    id: int
    program: str
    kind: str
    message: str
    locs: tuple[Loc, ...]  # innermost first

    def format(self, args: tuple[int, ...] = ()) -> str:
        """``Kind: message`` with ``args`` filled into the ``{}`` placeholders."""
        count = self.message.count("{}")
        values = list(args[:count]) + ["?"] * (count - len(args))
        return f"{self.kind}: {self.message.format(*values)}" if self.message else self.kind


@dataclass(frozen=True)
class ErrorRecord:
    site_id: int
    program_index: int
    args: tuple[int, ...]

    @classmethod
    def unpack(cls, data: bytes) -> ErrorRecord:
        site_id, program_index, *args = ERROR_RECORD.unpack_from(data)
        return cls(site_id, program_index, tuple(args))


def align8(size: int) -> int:
    return (size + 7) & ~7


def frame_layout(frame_size: int, spill_size: int = 0) -> tuple[int, int]:
    """(offset of the exception scratch area, value size of the frame map) for
    ``spill_size`` bytes of spilled scalars followed by ``frame_size`` of locals."""
    scratch = spill_size + align8(frame_size)
    return scratch, scratch + ERROR_RECORD.size


def frame_map_name(program: str, taken: set[str]) -> str:
    """``<program>.frame`` cut to the kernel's name length, unique among ``taken``."""
    suffix = ".frame"
    name = (program[: MAP_NAME_LENGTH - len(suffix)] + suffix)
    counter = 0
    while name in taken:
        counter += 1
        tail = f"{suffix}{counter}"
        name = program[: MAP_NAME_LENGTH - len(tail)] + tail
    return name


def frame_map(name: str, frame_size: int, spill_size: int = 0) -> MapDecl:
    """The frame map of a program whose locals take ``frame_size`` bytes and
    whose spilled scalars ``spill_size`` more."""
    value_size = frame_layout(frame_size, spill_size)[1]
    return MapDecl(name, "PERCPU_ARRAY", 4, value_size, 1, key_type=u32)


def error_channel_maps(site_count: int) -> list[MapDecl]:
    def counters(name: str, entries: int) -> MapDecl:
        return MapDecl(name, "PERCPU_ARRAY", 4, 8, entries, key_type=u32, value_type=u64)

    return [
        MapDecl(ERRORS_MAP, "RINGBUF", 0, 0, ERRORS_RING_SIZE),
        counters(ERRORS_LOST_MAP, 1),
        counters(EXC_COUNT_MAP, max(site_count, 1)),
    ]
