"""Diagnostics: what the front end tells the user, rendered like Python's own errors.

Every problem in a module becomes a :class:`Diagnostic` holding its position
(1-based line, 0-based column, as :mod:`ast` counts them) and an optional
hint. ``str(diagnostic)`` renders it with the source line and a caret::

    fw.py:12:8: error: cannot add u32 and i64
        x = a + b
            ^
    hint: convert one side, e.g. i64(a) + b

Inside the compiler, a check that fails raises :class:`SourceError` at the
node it is about; the visitor that catches it records the diagnostic and
moves on to the next statement, so one run reports every error of a file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    col: int
    message: str
    hint: str | None = None
    source_line: str = ""
    severity: str = "error"

    @property
    def headline(self) -> str:
        """The first line: ``file:line:col: error: message``; ``col`` counts from 0,
        as Python's ``ast`` does."""
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}"

    def __str__(self) -> str:
        lines = [self.headline]
        text = self.source_line.rstrip()
        if text.strip():
            indent = len(text) - len(text.lstrip())
            lines.append(f"    {text.lstrip()}")
            lines.append("    " + " " * max(0, min(self.col, len(text)) - indent) + "^")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class SourceError(Exception):
    """A user error at ``node`` (an AST node, or None for the whole file)."""

    def __init__(self, node: ast.AST | None, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.hint = hint


class CompileError(Exception):
    """The module is not a valid pykex extension; ``diagnostics`` says why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class Reporter:
    """Collects the diagnostics of one file, sorted by position when read."""

    def __init__(self, filename: str, source: str) -> None:
        self.filename = filename
        self.lines = source.splitlines()
        self._found: list[Diagnostic] = []

    def error(self, node: ast.AST | None, message: str, hint: str | None = None) -> None:
        line = getattr(node, "lineno", 1) or 1
        col = getattr(node, "col_offset", 0) or 0
        self.at(line, col, message, hint)

    def at(self, line: int, col: int, message: str, hint: str | None = None) -> None:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        diagnostic = Diagnostic(self.filename, line, col, message, hint, text)
        if diagnostic not in self._found:
            self._found.append(diagnostic)

    def record(self, error: SourceError) -> None:
        self.error(error.node, error.message, error.hint)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return sorted(self._found, key=lambda d: (d.line, d.col))

    def __bool__(self) -> bool:
        return bool(self._found)
