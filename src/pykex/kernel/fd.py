"""File descriptors that own what they point at.

A kernel object (map, program, link, BTF) lives as long as some descriptor or
pin refers to it. :class:`FD` closes its descriptor exactly once: explicitly,
at the end of a ``with`` block, or when garbage collected. Tests can ask for
the descriptors still open to find leaks.
"""

from __future__ import annotations

import os
import traceback
import weakref

_open_fds: weakref.WeakSet[FD] = weakref.WeakSet()
_trace_creation = False


class FD:
    """An owned file descriptor. ``int(fd)`` gives the raw number."""

    __slots__ = ("__weakref__", "_finalizer", "_number", "created_at", "what")

    def __init__(self, number: int, what: str = "") -> None:
        if number < 0:
            raise ValueError(f"invalid file descriptor {number}")
        self._number = number
        self.what = what
        self.created_at = traceback.format_stack(limit=8)[:-1] if _trace_creation else None
        self._finalizer = weakref.finalize(self, os.close, number)
        _open_fds.add(self)

    def __int__(self) -> int:
        if self._number < 0:
            raise ValueError(f"file descriptor of {self.what or 'object'} is closed")
        return self._number

    def __index__(self) -> int:
        return int(self)

    @property
    def closed(self) -> bool:
        return self._number < 0

    def close(self) -> None:
        if self._number >= 0:
            self._number = -1
            self._finalizer()
            _open_fds.discard(self)

    def disown(self) -> int:
        """Hand the descriptor to the caller, who must close it."""
        number = int(self)
        self._finalizer.detach()
        self._number = -1
        _open_fds.discard(self)
        return number

    def dup(self) -> FD:
        return FD(os.dup(int(self)), self.what)

    def __enter__(self) -> FD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else str(self._number)
        return f"FD({state}{', ' + self.what if self.what else ''})"


def open_fds() -> list[FD]:
    """Descriptors created through :class:`FD` and not yet closed."""
    return [fd for fd in _open_fds if not fd.closed]


def trace_creation(enabled: bool = True) -> None:
    """Record a stack trace at each FD's creation, to find who leaked it."""
    global _trace_creation
    _trace_creation = enabled
