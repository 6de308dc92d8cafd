"""Output for tracing tools: aligned event columns, JSON lines, colour, progress
and periodic intervals, shaped like BCC tools' output.

::

    table = Table([Column("PCOMM", 16), Column("PID", 7), Column("PPID", 7),
                   Column("RET", 3, align=">"), Column("ARGS")], json=args.json)
    table.header()                      # "PCOMM            PID     PPID    RET ARGS"
    table.row(b"bash", 4242, 1, 0, "/bin/ls -l", color="red" if failed else None)

    for tick in intervals(args.interval, args.count):
        if args.timestamp:
            print(tick.stamp())         # "14:05:09", BCC's -T
        hist.print()

With ``json=True`` the header is skipped and each row is one JSON object on
its own line, keyed by the lower-cased column names. Colour is used only when
the stream is a terminal and ``NO_COLOR`` is unset or empty (no-color.org);
the :class:`Progress` spinner appears only on a terminal, on standard error,
so neither ever reaches a pipe or a file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TextIO

ANSI_CODES = {
    "bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33",
    "blue": "34", "magenta": "35", "cyan": "36",
}
_RESET = "\033[0m"


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def use_color(stream: TextIO | None = None) -> bool:
    """Whether to colour output to ``stream`` (standard output by default):
    only on a terminal, and never when ``NO_COLOR`` is set to anything."""
    if os.environ.get("NO_COLOR"):
        return False
    return is_terminal(stream or sys.stdout)


def colorize(text: str, color: str | None, stream: TextIO | None = None, *,
             enabled: bool | None = None) -> str:
    """``text`` in ``color`` (a name of :data:`ANSI_CODES`) when colour is on for
    ``stream`` (or when ``enabled`` says so), else unchanged."""
    if color is None:
        return text
    if color not in ANSI_CODES:
        raise ValueError(f"unknown colour {color!r} (known: {', '.join(ANSI_CODES)})")
    if not (use_color(stream) if enabled is None else enabled):
        return text
    return f"\033[{ANSI_CODES[color]}m{text}{_RESET}"


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: bytes as text (up to the first NUL, like a C
    string), structs as objects, enums by name, sequences as lists."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).split(b"\0", 1)[0].decode(errors="replace")
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    fields = getattr(type(value), "fields", None)
    if isinstance(fields, tuple):  # a pykex Struct
        return {f.name: jsonable(getattr(value, f.name)) for f in fields}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [jsonable(v) for v in value]
    return str(value)


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).split(b"\0", 1)[0].decode(errors="replace")
    return str(value)


class JsonLines:
    """Writes one JSON object per line and flushes it, for ``--json`` output."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file or sys.stdout

    def emit(self, obj: Mapping[str, Any]) -> None:
        self.file.write(json.dumps(jsonable(obj)) + "\n")
        self.file.flush()


@dataclass(frozen=True)
class Column:
    """A column of a :class:`Table`.

    ``width`` 0 leaves the value unpadded (the last column, usually ARGS).
    ``align`` is ``"<"`` or ``">"``; ``spec`` a format spec for the value
    (``".2f"``); ``truncate`` cuts values wider than the column; ``key`` is the
    JSON name (the lower-cased column name by default).
    """

    name: str
    width: int = 0
    align: str = "<"
    spec: str = ""
    truncate: bool = False
    key: str | None = None

    def __post_init__(self) -> None:
        if self.align not in ("<", ">"):
            raise ValueError(f"column {self.name}: align must be '<' or '>', got {self.align!r}")
        if self.width < 0:
            raise ValueError(f"column {self.name}: width must not be negative")

    @property
    def json_key(self) -> str:
        return self.key or self.name.lower()

    def cell(self, value: Any) -> str:
        text = format(value, self.spec) if self.spec else _text(value)
        if self.truncate and self.width and len(text) > self.width:
            text = text[: self.width]
        return f"{text:{self.align}{self.width}}" if self.width else text


ColumnLike = Column | tuple[str, int] | str


def _as_column(spec: ColumnLike) -> Column:
    if isinstance(spec, Column):
        return spec
    if isinstance(spec, str):
        return Column(spec)
    name, width = spec
    return Column(name, width)


class Table:
    """Rows of events under a header, columns separated by one space."""

    def __init__(self, columns: Sequence[ColumnLike], *, file: TextIO | None = None,
                 json: bool = False, color: bool | None = None) -> None:
        self.columns = [_as_column(c) for c in columns]
        if not self.columns:
            raise ValueError("a table needs at least one column")
        self.file = file or sys.stdout
        self.json = json
        self._color = use_color(self.file) if color is None else color
        self._json_out = JsonLines(self.file) if json else None

    def format_header(self) -> str:
        cells = [Column(c.name, c.width, c.align).cell(c.name) for c in self.columns]
        return " ".join(cells).rstrip()

    def header(self) -> None:
        """Print the column names (nothing in JSON mode)."""
        if not self.json:
            self._write(self.format_header())

    def _check_row(self, values: tuple[Any, ...]) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"a row of this table has {len(self.columns)} values "
                             f"({', '.join(c.name for c in self.columns)}), got {len(values)}")

    def format_row(self, *values: Any) -> str:
        self._check_row(values)
        return " ".join(c.cell(v) for c, v in zip(self.columns, values, strict=True)).rstrip()

    def row(self, *values: Any, color: str | None = None, **extra: Any) -> None:
        """Print one event; ``color`` tints the line on a terminal. In JSON mode
        the object also carries ``extra`` fields (the text columns do not)."""
        if self._json_out is not None:
            self._check_row(values)
            obj = {c.json_key: v for c, v in zip(self.columns, values, strict=True)}
            self._json_out.emit({**obj, **extra})
            return
        self._write(colorize(self.format_row(*values), color, enabled=self._color))

    def _write(self, line: str) -> None:
        self.file.write(line + "\n")
        self.file.flush()


class Progress:
    """A spinner on standard error while a slow step runs; shown only on a terminal.

    ::

        with Progress("compiling runqlat.py"):
            ext = pykex.load("runqlat.py")
    """

    FRAMES = "|/-\\"
    PERIOD = 0.1  # seconds per frame

    def __init__(self, message: str, *, file: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.message = message
        self.file = file or sys.stderr
        self.enabled = is_terminal(self.file) if enabled is None else enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, message: str) -> None:
        """Show ``message`` from the next frame on."""
        self.message = message

    def _spin(self) -> None:
        frame = 0
        while True:
            self.file.write(f"\r{self.FRAMES[frame % len(self.FRAMES)]} {self.message}\033[K")
            self.file.flush()
            frame += 1
            if self._stop.wait(self.PERIOD):
                return

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._spin, name="pykex-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.file.write("\r\033[K")  # leave the line as it was
        self.file.flush()


@dataclass(frozen=True)
class Tick:
    """One interval's end, when a tool prints its summary."""

    number: int  # 1 for the first interval
    time: float  # wall-clock seconds since the epoch
    elapsed: float  # seconds since the first interval began
    last: bool  # no interval follows (count reached, or interrupted)
    interrupted: bool  # ended early by Ctrl-C

    def stamp(self, fmt: str = "%H:%M:%S") -> str:
        """The local time of this tick, as BCC's ``-T`` prints it."""
        return time.strftime(fmt, time.localtime(self.time))


def intervals(seconds: float | None, count: int | None = None, *,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic,
              wall: Callable[[], float] = time.time) -> Iterator[Tick]:
    """Ticks every ``seconds`` (``count`` times, or until Ctrl-C), as BCC tools'
    ``[interval] [count]``. With ``seconds`` None, one tick when Ctrl-C ends the
    tracing (BCC's default "Hit Ctrl-C to end" mode).

    Deadlines are kept on a monotonic clock, so intervals do not drift by
    the time spent printing. Ctrl-C during a wait yields a final tick marked
    ``interrupted`` (the tool prints what it has, then exits) instead of
    raising.
    """
    if seconds is not None and seconds <= 0:
        raise ValueError(f"the interval must be positive, got {seconds}")
    if count is not None and count < 1:
        raise ValueError(f"the count must be at least 1, got {count}")
    start = clock()
    number = 0
    while True:
        number += 1
        interrupted = False
        try:
            if seconds is None:
                while True:
                    sleep(3600)
            else:
                delay = start + number * seconds - clock()
                if delay > 0:
                    sleep(delay)
        except KeyboardInterrupt:
            interrupted = True
        last = interrupted or (count is not None and number >= count)
        yield Tick(number, wall(), clock() - start, last, interrupted)
        if last:
            return


def add_interval_arguments(parser: argparse.ArgumentParser) -> None:
    """BCC tools' ``[interval] [count]`` positionals and ``-T/--timestamp``."""
    parser.add_argument("interval", nargs="?", type=_positive_float,
                        help="output interval, in seconds (default: once, at Ctrl-C)")
    parser.add_argument("count", nargs="?", type=_positive_int, help="number of outputs")
    parser.add_argument("-T", "--timestamp", action="store_true",
                        help="include timestamp on output")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json``: one JSON object per event or interval instead of text."""
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per line instead of text")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value
