"""Errors raised by :mod:`pykex.bpf`."""

from __future__ import annotations


class BpfError(Exception):
    """Base of every error raised by :mod:`pykex.bpf`."""


class EncodingError(BpfError, ValueError):
    """An instruction that the eBPF instruction set does not define, or cannot encode.

    Raised by ``decode`` for invalid bytes, by ``Instruction.check`` for invalid field
    combinations and by ``encode`` for unresolvable labels or out-of-range jumps.
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        self.index = index  # position in the instruction list, when known
        super().__init__(message if index is None else f"instruction {index}: {message}")


class AssemblyError(BpfError, ValueError):
    """Assembler input that cannot be assembled; carries the 1-based line number."""

    def __init__(self, message: str, line: int, text: str = "") -> None:
        self.message = message
        self.line = line
        self.text = text
        where = f"line {line}: {message}"
        super().__init__(f"{where}\n    {text.strip()}" if text.strip() else where)
