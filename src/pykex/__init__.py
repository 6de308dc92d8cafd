"""pykex: safe Linux kernel extensions written in typed Python.

An extension imports its language from here (types, maps, program
decorators, contexts, helpers: :mod:`pykex.lang.prelude`); user space calls
:func:`load` to compile an extension and load it into the kernel, or
:func:`load_host` to run the same module in CPython.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykex.lang.prelude import *  # noqa: F403
from pykex.lang.prelude import __all__ as _language

if TYPE_CHECKING:
    from pykex.runtime import Extension, HostExtension

__version__ = "0.1.0"


def load(path: str, **options: Any) -> Extension:
    """Compile the extension at ``path``, create its maps and load its programs."""
    from pykex.runtime import load as load_extension

    return load_extension(path, **options)


def load_host(path: str, **options: Any) -> HostExtension:
    """Compile the extension at ``path`` and run it in CPython (host mode)."""
    from pykex.runtime import load_host as load_in_host

    return load_in_host(path, **options)


__all__ = [*_language, "load", "load_host"]
