"""pykex.runtime: what runs beside an extension.

Public API:

* ``load(path, *, source=None, opt_level=1) -> Extension``: compile, create the
  maps, load the programs (all or nothing). ``path`` may also be a ready
  :class:`~pykex.compiler.Compilation`.
* ``load_host(path, *, source=None, opt_level=1, cpu=0, loop_budget=..., seed=0)
  -> HostExtension``: the same compiled IR run by :mod:`pykex.ir.interp`.
* :class:`Extension` / :class:`HostExtension`: ``ext.<program>`` /
  ``ext.programs[name]`` (``test_run(packet, repeat=, ctx=) -> RunResult``;
  kernel programs also ``attach(**overrides)`` and ``attach_xdp(...)``-style
  methods returning links), ``ext.<map>`` / ``ext.maps[name]`` (typed views),
  ``exceptions() -> ExceptionCounts``, ``lost_reports``, ``sites``, ``close()``;
  kernel extensions also ``errors(timeout)`` and ``links``.
* :class:`ExceptionReport` (``str()`` is a Python-style traceback) and
  :func:`raise_for` (raise it as ``IndexError``, ``KeyError``...).
"""

from .base import ExceptionCounts, RunResult
from .errors import ExceptionReport, ExtensionError, Frame, raise_for
from .extension import Extension, LoadedProgram, load
from .host import HostExtension, HostProgram, load_host
from .hostmaps import HostMapView

__all__ = [
    "ExceptionCounts",
    "ExceptionReport",
    "Extension",
    "ExtensionError",
    "Frame",
    "HostExtension",
    "HostMapView",
    "HostProgram",
    "LoadedProgram",
    "RunResult",
    "load",
    "load_host",
    "raise_for",
]
