"""Exception reports: what an extension raised, shown as a Python traceback.

Generated code reports an exception as an error record (site id, program
index, up to four values for the message, see
:mod:`pykex.bpf.codegen.runtime`). The site table of the compiled module
knows the rest: the exception's kind, its message template and the chain of
inlined pykex functions that led to it. :func:`report_from_record` joins the
two into an :class:`ExceptionReport`, whose ``str()`` reads like CPython's::

    Traceback (most recent call last):
      File "fw.py", line 30, in firewall
        ip = parse_ip(ctx)
      File "fw.py", line 12, in parse_ip
        hdr = ctx.packet.read(14, IPv4)
    IndexError: packet offset 14 + 20 > length 20

:func:`raise_for` turns a report into the real Python exception, for tests
that use ``pytest.raises``.
"""

from __future__ import annotations

import builtins
import linecache
from dataclasses import dataclass
from typing import NoReturn

from pykex.bpf.codegen import CompiledModule, ErrorRecord, ExceptionSite
from pykex.ir.nodes import Loc
from pykex.lang.prelude import TerminationError

# Kinds that are not builtins but that pykex code may raise.
PYKEX_EXCEPTIONS: dict[str, type[Exception]] = {"TerminationError": TerminationError}


class ExtensionError(Exception):
    """An exception of a kind Python has no class for, raised by :func:`raise_for`."""


@dataclass(frozen=True)
class Frame:
    """One line of a traceback: where a pykex function was when it raised or called."""

    file: str
    line: int
    function: str
    text: str  # the source line, stripped; "" when unknown

    def __str__(self) -> str:
        head = f'  File "{self.file}", line {self.line}, in {self.function}'
        return f"{head}\n    {self.text}" if self.text else head


@dataclass(frozen=True)
class ExceptionReport:
    """An exception raised by ``program``; ``frames`` are outermost first."""

    kind: str
    message: str
    program: str
    frames: tuple[Frame, ...]
    site: int | None = None  # the exception site's id in the compiled module

    @property
    def headline(self) -> str:
        """The last line of the traceback: ``Kind: message``."""
        return f"{self.kind}: {self.message}" if self.message else self.kind

    def __str__(self) -> str:
        lines = ["Traceback (most recent call last):", *map(str, self.frames), self.headline]
        return "\n".join(lines)


def format_message(template: str, args: tuple[int, ...]) -> str:
    """``template`` with its ``{}`` placeholders filled from ``args`` ("?" when missing)."""
    count = template.count("{}")
    values: list[object] = list(args[:count]) + ["?"] * (count - len(args[:count]))
    return template.format(*values)


def frames_of(locs: tuple[Loc, ...] | list[Loc], source: SourceLines) -> tuple[Frame, ...]:
    """Traceback frames of a location chain given innermost first."""
    return tuple(
        Frame(loc.file, loc.line, loc.function, source.line(loc.file, loc.line))
        for loc in reversed(locs)
    )


class SourceLines:
    """The text of source lines: the module's own source, other files from disk."""

    def __init__(self, file: str, source: str) -> None:
        self.file = file
        self.lines = source.splitlines()

    def line(self, file: str, number: int) -> str:
        if file == self.file:
            text = self.lines[number - 1] if 0 < number <= len(self.lines) else ""
        else:
            text = linecache.getline(file, number)
        return text.strip()


def report_for_site(
    site: ExceptionSite, args: tuple[int, ...], source: SourceLines
) -> ExceptionReport:
    return ExceptionReport(
        kind=site.kind,
        message=format_message(site.message, args),
        program=site.program,
        frames=frames_of(site.locs, source),
        site=site.id,
    )


class ReportDecoder:
    """Turns the error records of one compiled module into reports."""

    def __init__(self, compiled: CompiledModule) -> None:
        self.compiled = compiled
        self.source = SourceLines(compiled.file, compiled.source)

    def decode(self, record: ErrorRecord) -> ExceptionReport:
        if not 0 <= record.site_id < len(self.compiled.sites):
            program = self.program_name(record.program_index)
            return ExceptionReport(
                "SystemError",
                f"error record names exception site {record.site_id}, "
                f"but the module has {len(self.compiled.sites)}",
                program,
                (),
            )
        return report_for_site(self.compiled.sites[record.site_id], record.args, self.source)

    def decode_bytes(self, data: bytes) -> ExceptionReport:
        return self.decode(ErrorRecord.unpack(data))

    def program_name(self, index: int) -> str:
        programs = self.compiled.programs
        return programs[index].name if 0 <= index < len(programs) else f"<program {index}>"


def exception_class(kind: str) -> type[Exception]:
    """The Python class of exception ``kind`` (:class:`ExtensionError` when none)."""
    found = PYKEX_EXCEPTIONS.get(kind) or getattr(builtins, kind, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return ExtensionError


def raise_for(report: ExceptionReport) -> NoReturn:
    """Raise ``report`` as the Python exception it describes.

    The exception carries the report as ``.report`` and its pykex traceback
    as a note, so pytest and the interpreter print where the extension raised.
    """
    kind = exception_class(report.kind)
    message = report.message if kind is not ExtensionError else report.headline
    error = kind(message)
    error.report = report  # type: ignore[attr-defined]
    error.add_note(str(report))
    raise error
