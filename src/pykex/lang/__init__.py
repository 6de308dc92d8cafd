"""pykex.lang: the front end -- an extension's Python source to checked IR.

Public API:

* :func:`check(source, filename=None, tracepoints=None) <check>` -> ``list[Diagnostic]``:
  every problem of the module (empty when it is valid); never raises for
  user errors.
* :func:`compile_to_ir(source, filename=None, tracepoints=None) <compile_to_ir>` ->
  :class:`~pykex.ir.nodes.ModuleIR`; raises :class:`CompileError` (with
  ``.diagnostics``) when the module is invalid.
* :class:`Diagnostic`: ``file``, ``line``, ``col`` (0-based), ``message``,
  ``hint``; ``.headline`` is ``file:line:col: error: message`` (1-based
  column) and ``str()`` adds the source line, a caret and the hint.

``source`` is the module's text or a :class:`pathlib.Path`. The names
extensions import live in :mod:`pykex.lang.prelude`; the language itself
is described in docs/language.md.
"""

from pykex.lang.compiler import check, compile_to_ir
from pykex.lang.diagnostics import CompileError, Diagnostic

__all__ = ["CompileError", "Diagnostic", "check", "compile_to_ir"]
