"""Errors of the BPF object layer (spec, writer, reader, loader)."""

from __future__ import annotations


class ELFError(Exception):
    """Base of the errors raised by :mod:`pykex.elf` for BPF objects."""


class ObjectSpecError(ELFError, ValueError):
    """An :class:`~pykex.elf.spec.ObjectSpec` is inconsistent (caught before writing or loading)."""


class ELFFormatError(ELFError, ValueError):
    """Bytes that are not a BPF ELF object this reader understands; the message says why."""


class ObjectLoadError(ELFError):
    """Loading an object failed; ``__cause__`` holds the kernel's error (verifier log and all)."""
