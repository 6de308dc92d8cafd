"""Exceptions raised by :mod:`pykex.btf`."""

from __future__ import annotations


class BTFError(Exception):
    """Base class of every error raised by pykex.btf."""


class BTFFormatError(BTFError):
    """Raw BTF (or ``.BTF.ext``) bytes are malformed.

    ``offset`` is the byte offset into the blob where the problem was found.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at offset {offset:#x})")
        self.reason = message
        self.offset = offset


class BTFNotFoundError(BTFError, LookupError):
    """A type, member, enumerator or kfunc that was asked for does not exist."""

    def __str__(self) -> str:
        # LookupError would otherwise render the message with quotes around it.
        return str(self.args[0]) if self.args else ""


class TracepointFormatError(BTFError):
    """A tracefs ``format`` file could not be parsed."""
