"""Log2 and linear histograms read from maps and printed the way BCC prints them.

A tracing tool counts events per *slot* in a map on the kernel side; user space
reads the map and prints a distribution::

    hist = Log2Histogram.from_map(ext.latency, val_type="usecs")
    hist.print()

         usecs               : count     distribution
             0 -> 1          : 0        |                                        |
             2 -> 3          : 4        |**********                              |
             4 -> 7          : 16       |****************************************|

Slot conventions (what the kernel side must store):

* **log2**: ``slot = value.bit_length()``, so 0 -> 0, 1 -> 1, 2..3 -> 2,
  4..7 -> 3, ... (:func:`log2_slot`); the extension computes it with a
  shift-and-count loop. Slot ``s >= 1`` covers ``2**(s-1) .. 2**s - 1``.
  BCC's ``bpf_log2l`` gives the same slot for every value except 0, which it
  puts in slot 1; BCC's printer never shows slot 0. Here slot 0 is counted
  in the first printed row, whose range ``0 -> 1`` already includes 0, so the
  output is BCC's own for any data BCC's kernel side produces, and nothing a
  bit-length kernel side stores is dropped.
* **linear**: the slot is the value itself (or whatever step the kernel side
  divided by); row ``i`` is printed as ``i``.

Per-CPU maps are summed over CPUs. A map whose key is a struct of
(section, slot), like BCC's per-process or per-disk histograms, is read with
:meth:`HistogramSections.from_map` and printed one section after another
under ``section_header = <section>`` lines, as BCC's ``section_header`` does.

JSON: :meth:`Histogram.to_json` gives the object BCC's ``print_json_hist``
prints (``ts``, ``val_type``, ``data`` of ``interval-start``/``interval-end``
/``count``), but as real JSON rather than a Python ``repr``.
"""

from __future__ import annotations

import json
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, Self, TextIO, TypeVar

from pykex.kernel.maps import sum_per_cpu

STAR_WIDTH = 40
"""Width of the star bar, as BCC's ``stars_max``."""

_WIDE_LOG2_FROM = 33  # BCC switches to 20-digit columns past slot 32


class _ItemSource(Protocol):
    def items(self) -> Iterable[tuple[Any, Any]]: ...


def log2_slot(value: int) -> int:
    """The log2 slot of ``value``: its bit length (0 for 0, 1 for 1, 2 for 2..3, ...)."""
    if value < 0:
        raise ValueError(f"log2 histograms count non-negative values, got {value}")
    return value.bit_length()


def _stars(count: int, most: int, width: int) -> str:
    """BCC's bar: ``width * count / most`` stars, rounded down, at most ``width``."""
    if most <= 0:
        return ""
    return "*" * min(width, width * count // most)


@dataclass(frozen=True)
class Bucket:
    """One printed row: the values ``low..high`` (inclusive) were seen ``count`` times."""

    low: int
    high: int
    count: int


def _source_name(source: object) -> str:
    name = getattr(source, "name", None)
    return f"map {name!r}" if name else "the histogram source"


def _count_of(value: Any, where: str) -> int:
    if isinstance(value, list):  # a per-CPU map: one count per CPU
        value = sum_per_cpu(value) if value else 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: histogram counts must be integers, got {type(value).__name__}")
    return value


def _field_names(key: Any) -> list[str] | None:
    """Field names of a struct key, or None for a key that is not a struct."""
    fields = getattr(type(key), "fields", None)
    if fields is None or not isinstance(fields, tuple):
        return None
    return [f.name for f in fields]


def _slot_of(key: Any, slot_field: str | None, where: str) -> int:
    if slot_field is not None:
        names = _field_names(key) or []
        if slot_field not in names:
            fields = f" (fields: {', '.join(names)})" if names else ""
            raise TypeError(f"{where}: its key, a {type(key).__name__}, has no field "
                            f"{slot_field!r}{fields}")
        key = getattr(key, slot_field)
    if isinstance(key, bool) or not isinstance(key, int):
        names = _field_names(key)
        hint = (
            f"; its key is a struct with fields {', '.join(names)}: name the slot with "
            f"slot_field=, or read per-section histograms with HistogramSections.from_map"
            if names
            else ""
        )
        raise TypeError(f"{where}: histogram slots must be integers, got "
                        f"{type(key).__name__}{hint}")
    if key < 0:
        raise ValueError(f"{where}: histogram slots must not be negative, got {key}")
    return key


class Histogram(ABC):
    """Counts per slot; see :class:`Log2Histogram` and :class:`LinearHistogram`."""

    kind: ClassVar[str]

    def __init__(self, counts: Mapping[int, int] | None = None, *, val_type: str = "value"
                 ) -> None:
        self.val_type = val_type
        self._counts: dict[int, int] = {}
        for slot, count in (counts or {}).items():
            self.add(slot, count)

    @classmethod
    def from_counts(cls, counts: Mapping[int, int] | Iterable[int], *,
                    val_type: str = "value") -> Self:
        """A histogram from ``{slot: count}``, or from a list whose index is the slot
        (the ``vals`` list BCC's printers take)."""
        if not isinstance(counts, Mapping):
            counts = dict(enumerate(counts))
        return cls(counts, val_type=val_type)

    @classmethod
    def from_map(cls, source: _ItemSource, *, val_type: str = "value",
                 slot_field: str | None = None) -> Self:
        """A histogram from a map of slot -> count (per-CPU maps are summed).

        ``source`` is anything with ``items()``: a kernel map, a host-mode map
        view or a dict. A struct key needs ``slot_field``, the field holding the
        slot; entries that share a slot (other fields differing) add up.
        """
        where = _source_name(source)
        histogram = cls(val_type=val_type)
        for key, value in source.items():
            histogram.add(_slot_of(key, slot_field, where), _count_of(value, where))
        return histogram

    def add(self, slot: int, count: int = 1) -> None:
        """Add ``count`` to ``slot``."""
        if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
            raise ValueError(f"histogram slots are non-negative integers, got {slot!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"histogram counts are non-negative integers, got {count!r}")
        self._counts[slot] = self._counts.get(slot, 0) + count

    def record(self, value: int, count: int = 1) -> None:
        """Count ``value`` in its slot, as the kernel side would."""
        self.add(self.slot(value), count)

    @staticmethod
    @abstractmethod
    def slot(value: int) -> int:
        """The slot the kernel side stores ``value`` in."""

    @property
    def counts(self) -> dict[int, int]:
        """``{slot: count}`` for every slot with a non-zero count, in slot order."""
        return {slot: self._counts[slot] for slot in sorted(self._counts) if self._counts[slot]}

    def __getitem__(self, slot: int) -> int:
        return self._counts.get(slot, 0)

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.counts == other.counts and self.val_type == other.val_type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.counts}, val_type={self.val_type!r})"

    @abstractmethod
    def buckets(self) -> list[Bucket]:
        """The rows BCC prints: from the first row up to the last non-empty one."""

    def format(self, *, strip_leading_zero: bool = False) -> str:
        """The histogram as BCC prints it (empty when every count is 0).

        ``strip_leading_zero`` skips the empty rows before the first count,
        as BCC's option of that name.
        """
        rows = self.buckets()
        if not any(row.count for row in rows):
            return ""
        header, line, width = self._layout(rows)
        most = max(row.count for row in rows)
        lines = [header]
        skipping = strip_leading_zero
        for row in rows:
            if skipping and not row.count:
                continue
            skipping = False
            bar = _stars(row.count, most, width)
            lines.append(f"{line(row)} : {row.count:<8} |{bar:<{width}}|")
        return "\n".join(lines) + "\n"

    @abstractmethod
    def _layout(self, rows: list[Bucket]) -> tuple[str, Callable[[Bucket], str], int]:
        """The header, the range column of a row, and the star bar's width."""

    def print(self, file: TextIO | None = None, *, strip_leading_zero: bool = False) -> None:
        (file or sys.stdout).write(self.format(strip_leading_zero=strip_leading_zero))

    def to_dict(self, *, ts: float | None = None) -> dict[str, Any]:
        """BCC's JSON histogram: ``ts`` (local time, ``%Y-%m-%d %H:%M:%S``),
        ``val_type`` and ``data``, one ``interval-start``/``interval-end``/``count``
        object per row."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
        data = [
            {"interval-start": row.low, "interval-end": row.high, "count": row.count}
            for row in self.buckets()
        ]
        return {"ts": stamp, "val_type": self.val_type, "data": data}

    def to_json(self, *, ts: float | None = None) -> str:
        """:meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict(ts=ts))


class Log2Histogram(Histogram):
    """Power-of-two buckets; the kernel side stores ``value.bit_length()``."""

    kind = "log2"

    @staticmethod
    def slot(value: int) -> int:
        return log2_slot(value)

    def buckets(self) -> list[Bucket]:
        # Slot 0 is shown in row 1, so a count there alone still makes one row.
        last = max((max(slot, 1) for slot, count in self._counts.items() if count), default=0)
        rows = []
        for slot in range(1, last + 1):
            low, high = (1 << slot) >> 1, (1 << slot) - 1
            count = self._counts.get(slot, 0)
            if slot == 1:  # the value 0 shares BCC's first row, "0 -> 1"
                low, count = 0, count + self._counts.get(0, 0)
            rows.append(Bucket(low, high, count))
        return rows

    def _layout(self, rows: list[Bucket]) -> tuple[str, Callable[[Bucket], str], int]:
        if len(rows) < _WIDE_LOG2_FROM:
            return (
                f"     {self.val_type:<19} : count     distribution",
                lambda row: f"{row.low:>10} -> {row.high:<10}",
                STAR_WIDTH,
            )
        return (
            f"               {self.val_type:<29} : count     distribution",
            lambda row: f"{row.low:>20} -> {row.high:<20}",
            STAR_WIDTH // 2,
        )


class LinearHistogram(Histogram):
    """One bucket per slot; the kernel side stores the value (or value // step)."""

    kind = "linear"

    @staticmethod
    def slot(value: int) -> int:
        if value < 0:
            raise ValueError(f"linear histograms count non-negative values, got {value}")
        return value

    def buckets(self) -> list[Bucket]:
        last = max((slot for slot, count in self._counts.items() if count), default=-1)
        return [Bucket(slot, slot, self._counts.get(slot, 0)) for slot in range(last + 1)]

    def _layout(self, rows: list[Bucket]) -> tuple[str, Callable[[Bucket], str], int]:
        return (
            f"     {self.val_type:<13} : count     distribution",
            lambda row: f"        {row.low:<10}",
            STAR_WIDTH,
        )


H = TypeVar("H", bound=Histogram)


def _ordered(keys: list[Any]) -> list[Any]:
    """Sections in key order where keys compare, else in the order they came."""
    try:
        return sorted(keys)
    except TypeError:
        return keys


class HistogramSections(Generic[H]):
    """One histogram per section (a pid, a disk, ...), read from a map keyed by
    (section, slot); a mapping of section -> histogram."""

    def __init__(self, kind: type[H], sections: Mapping[Any, H] | None = None, *,
                 val_type: str = "value") -> None:
        self.kind = kind
        self.val_type = val_type
        self._sections: dict[Any, H] = dict(sections or {})

    @classmethod
    def from_counts(cls, counts: Mapping[tuple[Any, int], int],
                    kind: type[H], *, val_type: str = "value") -> HistogramSections[H]:
        """Sections from ``{(section, slot): count}``."""
        sections = cls(kind, val_type=val_type)
        for (section, slot), count in counts.items():
            sections.histogram(section).add(slot, count)
        return sections

    @classmethod
    def from_map(cls, source: _ItemSource, kind: type[H], *, val_type: str = "value",
                 section_field: str | None = None, slot_field: str | None = None,
                 section_fn: Callable[[Any], Any] | None = None) -> HistogramSections[H]:
        """Sections from a map whose key is a struct (or a tuple) of section and slot.

        By default the key's first field is the section and its second the
        slot, as in BCC. ``section_fn`` maps a section value to the section it
        belongs to (BCC's ``bucket_fn``): sections it maps together add up.
        """
        where = _source_name(source)
        sections = cls(kind, val_type=val_type)
        for key, value in source.items():
            section, slot = _split_key(key, section_field, slot_field, where)
            if section_fn is not None:
                section = section_fn(section)
            sections.histogram(section).add(_slot_of(slot, None, where), _count_of(value, where))
        return sections

    def histogram(self, section: Any) -> H:
        """The histogram of ``section``, created empty if new."""
        if section not in self._sections:
            self._sections[section] = self.kind(val_type=self.val_type)
        return self._sections[section]

    def __getitem__(self, section: Any) -> H:
        return self._sections[section]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def items(self) -> list[tuple[Any, H]]:
        return list(self._sections.items())

    def _order(self, sort: Callable[[list[Any]], list[Any]] | None) -> list[Any]:
        return list((sort or _ordered)(list(self._sections)))

    def format(self, *, section_header: str = "Bucket ptr",
               section_format: Callable[[Any], str] | None = None,
               sort: Callable[[list[Any]], list[Any]] | None = None,
               strip_leading_zero: bool = False) -> str:
        """Every section as BCC prints it: a blank line, ``section_header = section``
        (the section's ``repr`` unless ``section_format`` is given), then its
        histogram. Sections come sorted unless ``sort`` orders them otherwise."""
        parts = []
        for section in self._order(sort):
            label = section_format(section) if section_format else repr(section)
            parts.append(f"\n{section_header} = {label}\n")
            parts.append(self._sections[section].format(strip_leading_zero=strip_leading_zero))
        return "".join(parts)

    def print(self, file: TextIO | None = None, **options: Any) -> None:
        """Write :meth:`format` (same options) to ``file`` (standard output by default)."""
        (file or sys.stdout).write(self.format(**options))

    def to_json(self, *, section_header: str = "Bucket ptr",
                section_format: Callable[[Any], Any] | None = None,
                sort: Callable[[list[Any]], list[Any]] | None = None,
                ts: float | None = None) -> str:
        """One JSON object per section and line, each with ``section_header: section``
        added to the histogram's :meth:`~Histogram.to_dict`, as BCC's ``print_json_hist``."""
        lines = []
        for section in self._order(sort):
            obj = self._sections[section].to_dict(ts=ts)
            obj[section_header] = section_format(section) if section_format else section
            lines.append(json.dumps(obj, default=_json_default) + "\n")
        return "".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.rstrip(b"\0").decode(errors="replace")
    return str(value)


def _split_key(key: Any, section_field: str | None, slot_field: str | None,
               where: str) -> tuple[Any, Any]:
    if isinstance(key, tuple) and section_field is None and slot_field is None:
        if len(key) != 2:
            raise TypeError(f"{where}: a tuple key must be (section, slot), got {key!r}")
        return key[0], key[1]
    names = _field_names(key)
    if names is None:
        raise TypeError(f"{where}: per-section histograms need a struct key of section and "
                        f"slot, got {type(key).__name__}")
    if (section_field is None or slot_field is None) and len(names) < 2:
        raise TypeError(f"{where}: its key struct has one field ({names[0]}); "
                        f"per-section histograms need a section field and a slot field")
    section_name = section_field if section_field is not None else names[0]
    slot_name = slot_field if slot_field is not None else names[1]
    for name in (section_name, slot_name):
        if name not in names:
            raise TypeError(f"{where}: its key has no field {name!r} "
                            f"(fields: {', '.join(names)})")
    return getattr(key, section_name), getattr(key, slot_name)
