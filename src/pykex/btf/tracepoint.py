"""Tracepoint record layouts from tracefs ``events/<group>/<name>/format``.

A format file names the event, gives its id (what perf-event attach wants)
and lists the fields of the record a tracepoint program receives::

    name: sched_process_exec
    ID: 365
    format:
            field:unsigned short common_type;       offset:0;       size:2; signed:0;
            ...
            field:__data_loc char[] filename;       offset:8;       size:4; signed:0;
    print fmt: "filename=%s ...", __get_str(filename), ...

The fields before the first blank line are the common header every event
shares. ``__data_loc`` fields hold a 32-bit word locating a dynamic array
elsewhere in the record (low 16 bits: offset from the record start; high 16
bits: length in bytes); ``__rel_loc`` is the same with the offset counted
from the end of the field itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pykex.btf.errors import BTFNotFoundError, TracepointFormatError
from pykex.btf.tracefs import tracefs_root

_DECLARATION = re.compile(
    r"^(?P<type>.*?)\s*\b(?P<name>[A-Za-z_]\w*)\s*(?:\[(?P<length>[^\]]*)\])?$"
)
_ATTRIBUTE = re.compile(r"(\w+):([^;]*);")
_DYNAMIC_PREFIXES = {"__data_loc": "data_loc", "__rel_loc": "rel_loc"}


@dataclass(frozen=True, slots=True)
class TracepointField:
    """One field of a tracepoint record.

    ``c_type`` is the declared C type without the field name (``"char"`` for
    ``char comm[16]``, ``"char[]"`` for ``__data_loc char[] filename``).
    ``array_length`` is set for fixed arrays (0 for a trailing ``[]``; None
    when the length is not a plain number). ``dynamic`` is ``"data_loc"``,
    ``"rel_loc"`` or None.
    """

    name: str
    c_type: str
    offset: int
    size: int
    signed: bool
    array_length: int | None = None
    dynamic: str | None = None
    common: bool = False

    def locate(self, word: int) -> tuple[int, int]:
        """(offset from the record start, length in bytes) of the data a dynamic field points at."""
        if self.dynamic is None:
            raise TracepointFormatError(f"field {self.name!r} is not a dynamic array")
        offset, length = word & 0xFFFF, word >> 16 & 0xFFFF
        if self.dynamic == "rel_loc":
            offset += self.offset + self.size
        return offset, length


@dataclass(frozen=True, slots=True)
class TracepointFormat:
    group: str
    name: str
    id: int
    fields: tuple[TracepointField, ...]
    print_fmt: str = ""

    @property
    def common_fields(self) -> tuple[TracepointField, ...]:
        return tuple(f for f in self.fields if f.common)

    @property
    def event_fields(self) -> tuple[TracepointField, ...]:
        return tuple(f for f in self.fields if not f.common)

    @property
    def size(self) -> int:
        """Bytes up to the end of the last fixed field (dynamic data follows)."""
        return max((f.offset + f.size for f in self.fields), default=0)

    def field(self, name: str) -> TracepointField:
        for f in self.fields:
            if f.name == name:
                return f
        raise BTFNotFoundError(f"tracepoint {self.group}/{self.name} has no field {name!r}")


def parse_format(text: str, group: str = "") -> TracepointFormat:
    """Parse the text of a tracefs ``format`` file."""
    name = ""
    event_id: int | None = None
    fields: list[TracepointField] = []
    print_fmt = ""
    in_format = False
    in_common = True
    for line_number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("name:") and not in_format:
            name = stripped.removeprefix("name:").strip()
        elif stripped.startswith("ID:"):
            try:
                event_id = int(stripped.removeprefix("ID:").strip())
            except ValueError:
                raise TracepointFormatError(f"line {line_number}: bad event id {line!r}") from None
        elif stripped == "format:":
            in_format = True
        elif stripped.startswith("print fmt:"):
            print_fmt = stripped.removeprefix("print fmt:").strip()
            in_format = False
        elif in_format and not stripped:
            in_common = not fields and in_common
        elif in_format and stripped.startswith("field:"):
            fields.append(_parse_field(stripped, line_number, common=in_common))
        elif in_format:
            raise TracepointFormatError(f"line {line_number}: unexpected {line!r}")
    if event_id is None:
        raise TracepointFormatError(f"format of {name or 'an event'} has no ID line")
    if not fields:
        raise TracepointFormatError(f"format of {name or 'an event'} lists no fields")
    return TracepointFormat(group, name, event_id, tuple(fields), print_fmt)


def _parse_field(line: str, line_number: int, *, common: bool) -> TracepointField:
    attributes = dict(_ATTRIBUTE.findall(line))
    declaration = attributes.pop("field", "").strip()
    dynamic = None
    for prefix, label in _DYNAMIC_PREFIXES.items():
        if declaration.startswith(prefix + " "):
            dynamic = label
            declaration = declaration.removeprefix(prefix).strip()
    match = _DECLARATION.match(declaration)
    if match is None or not match["type"]:
        raise TracepointFormatError(f"line {line_number}: cannot parse declaration {declaration!r}")
    try:
        offset = int(attributes["offset"])
        size = int(attributes["size"])
        signed = int(attributes.get("signed", "0")) != 0
    except (KeyError, ValueError):
        raise TracepointFormatError(
            f"line {line_number}: field {match['name']!r} lacks a numeric offset or size"
        ) from None
    array_length = None
    length_text = match["length"]
    if length_text is not None:
        length_text = length_text.strip()
        if not length_text:
            array_length = 0
        elif length_text.isdigit():
            array_length = int(length_text)
    return TracepointField(
        name=match["name"],
        c_type=match["type"],
        offset=offset,
        size=size,
        signed=signed,
        array_length=array_length,
        dynamic=dynamic,
        common=common,
    )


def tracepoint_format(group: str, name: str) -> TracepointFormat:
    """Read and parse the live format of tracepoint ``group/name`` (mounting tracefs if needed)."""
    for part in (group, name):
        if not part or "/" in part or part in (".", ".."):
            raise BTFNotFoundError(f"{group}/{name} is not a tracepoint name")
    path = tracefs_root() / "events" / group / name / "format"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BTFNotFoundError(f"no tracepoint {group}/{name} (looked for {path})") from None
    return parse_format(text, group)
