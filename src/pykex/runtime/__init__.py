"""pykex.runtime: what runs beside an extension.

Public API:

* ``load(path, *, source=None, opt_level=1) -> Extension``: compile, create the
  maps, load the programs (all or nothing). ``path`` may also be a ready
  :class:`~pykex.compiler.Compilation`.
* ``load_host(path, *, source=None, opt_level=1, cpu=0, loop_budget=..., seed=0,
  process=None) -> HostExtension``: the same compiled IR run by
  :mod:`pykex.ir.interp`, in the task a :class:`HostProcess` describes (ids,
  comm, task_struct members, stacks, readable memory; this thread by default).
* :class:`Extension` / :class:`HostExtension`: ``ext.<program>`` /
  ``ext.programs[name]`` (``test_run(packet, repeat=, ctx=) -> RunResult``,
  host runs also ``process=`` and ``memory=``; ``reenable()`` for crash-stop
  programs; kernel programs also ``attach(**overrides)`` and
  ``attach_xdp(...)``-style methods returning links), ``ext.<map>`` /
  ``ext.maps[name]`` (typed views; ring buffers and perf event arrays are
  :class:`EventView` / :class:`HostEventView`: ``drain(decode=None)``,
  ``records(timeout, decode=None)``, ``drops``), ``exceptions() ->
  ExceptionCounts``, ``lost_reports``, ``sites``, ``close()``; kernel
  extensions also ``errors(timeout)`` and ``links``.
* :class:`ExceptionReport` (``str()`` is a Python-style traceback) and
  :func:`raise_for` (raise it as ``IndexError``, ``KeyError``...).
"""

from pykex.ir.interp import HostProcess

from .base import ExceptionCounts, RunResult
from .errors import ExceptionReport, ExtensionError, Frame, raise_for
from .extension import EventView, Extension, LoadedProgram, load
from .host import HostExtension, HostProgram, load_host
from .hostmaps import HostEventView, HostMapView

__all__ = [
    "EventView",
    "ExceptionCounts",
    "ExceptionReport",
    "Extension",
    "ExtensionError",
    "Frame",
    "HostEventView",
    "HostExtension",
    "HostMapView",
    "HostProcess",
    "HostProgram",
    "LoadedProgram",
    "RunResult",
    "load",
    "load_host",
    "raise_for",
]
