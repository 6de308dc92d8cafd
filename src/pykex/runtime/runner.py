"""``pykex run``: compile a tool module, load and attach it, show what it emits.

A *tool* is an extension module that may also carry a user-space part::

    def options(parser):            # the tool's own command-line options
        parser.add_argument("-p", "--pid", dest="target_pid", type=int)

    def main(ext, args):            # takes over the display
        session = args.session
        table = session.table([Column("PID", 7), Column("COMM", 16)])
        table.header()
        for event in session.events():
            table.row(event.pid, event.comm)

The compiler reads the whole module and leaves its user-space part alone
(``options``, ``main``, the functions only they use, imports of other modules
than pykex, values only they use; see docs/language.md). ``main`` runs in
CPython with the module imported normally.

:class:`Runner` does the work: :meth:`Runner.load` compiles and loads (every
option whose destination names a module global sets that global before
anything is attached), :meth:`Runner.attach` attaches every program as its
decorator says, and :meth:`Runner.run` streams trace output, ring buffer
events and exception tracebacks until Ctrl-C, SIGTERM or ``--duration``,
then detaches and prints the maps. A map declared with a trailing comment
``# histogram: log2 usecs`` (or ``linear``) is printed as a histogram.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import importlib.util
import os
import re
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, TextIO

from pykex.compiler import Compilation
from pykex.elf.errors import ELFError
from pykex.elf.symbols import symbol_file_offset
from pykex.kernel import BPFError, NotSupportedError, PermissionDeniedError
from pykex.kernel import link as links
from pykex.kernel.link import Link
from pykex.kernel.maps import sum_per_cpu
from pykex.kernel.ringbuf import RingBuffer
from pykex.kernel.tracepipe import TraceLine, TracePipe
from pykex.lang.diagnostics import CompileError, Reporter, SourceError
from pykex.lang.module import USERSPACE_HOOKS, GlobalVar, Module, analyse
from pykex.layout import Struct

from .errors import ExceptionReport
from .extension import Extension, LoadedProgram
from .histogram import Histogram, HistogramSections, LinearHistogram, Log2Histogram
from .output import Column, JsonLines, Progress, Table, Tick, colorize, intervals

_POLL_SECONDS = 0.1  # how often the event loop looks at the error channel and the clock
_HISTOGRAM_PRAGMA = re.compile(r"#\s*histogram:\s*(log2|linear)\b\s*(\w+)?")
_PRINTK_SPEC = re.compile(r"%(%|[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z)?([a-zA-Z]))")


class RunError(Exception):
    """A mistake the user can fix (a bad path, a missing option, no privileges):
    ``pykex run`` prints it as one line and exits with status 1.

    ``located`` errors already read ``file:line:col: error: ...``."""

    def __init__(self, message: str, *, located: bool = False) -> None:
        super().__init__(message)
        self.located = located


# -- the tool module -----------------------------------------------------------------------


@dataclass(frozen=True)
class HistogramSpec:
    """How a map is shown: as a ``log2`` or ``linear`` histogram of ``unit``."""

    kind: type[Histogram]
    unit: str


@dataclass
class Tool:
    """A tool module read from ``path``: its source, kernel part and facts the
    display needs (globals, ring buffer record types, histogram maps)."""

    path: str
    source: str
    hooks: set[str]
    globals: dict[str, GlobalVar] = field(default_factory=dict)
    histograms: dict[str, HistogramSpec] = field(default_factory=dict)
    _module: ModuleType | None = None

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Tool:
        name = os.fspath(path)
        if not os.path.exists(name):
            raise RunError(f"{name}: no such file")
        if os.path.isdir(name):
            raise RunError(f"{name} is a directory, not a tool module")
        try:
            source = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as failure:
            raise RunError(f"cannot read {name}: {failure}") from None
        try:
            tree = ast.parse(source, name)
        except SyntaxError as failure:
            raise RunError(f"{name}:{failure.lineno}:{failure.offset or 0}: error: invalid "
                           f"syntax: {failure.msg}") from None
        hooks = {
            node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name in USERSPACE_HOOKS
        }
        tool = cls(name, source, hooks)
        tool._learn(tree)
        return tool

    def _learn(self, tree: ast.Module) -> None:
        """Globals and Struct layouts as the compiler lays them out; errors are
        left for the compilation to report with all of its diagnostics."""
        module = Module(self.path, self.source, tree, Reporter(self.path, self.source))
        try:
            analyse(module, None)
        except SourceError:
            return
        self.globals = dict(module.globals)
        lines = self.source.splitlines()
        for name, info in module.maps.items():
            loc = info.decl.loc
            if loc is None or not 0 < loc.line <= len(lines):
                continue
            found = _HISTOGRAM_PRAGMA.search(lines[loc.line - 1])
            if found:
                kind = Log2Histogram if found.group(1) == "log2" else LinearHistogram
                self.histograms[name] = HistogramSpec(kind, found.group(2) or "value")

    @property
    def name(self) -> str:
        return Path(self.path).stem

    def userspace(self) -> ModuleType:
        """The module imported in CPython, for its ``options`` and ``main``."""
        if self._module is None:
            spec = importlib.util.spec_from_file_location(f"pykex_tool_{self.name}", self.path)
            if spec is None or spec.loader is None:
                raise RunError(f"cannot import {self.path}")
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as failure:  # the tool's own code: report it in one line
                raise RunError(f"cannot import {self.path} for its user-space part: "
                               f"{type(failure).__name__}: {failure}") from None
            self._module = module
        return self._module

    def hook(self, name: str) -> Callable[..., Any] | None:
        return getattr(self.userspace(), name) if name in self.hooks else None


# -- command-line options --------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every tool has; a tool's ``options(parser)`` may redefine them."""
    parser.add_argument("--iface", metavar="IF", help="network interface for xdp and tc programs")
    parser.add_argument("--binary", metavar="PATH", help="executable or library for uprobes")
    parser.add_argument("--pid", type=int, metavar="PID", help="process for uprobes")
    parser.add_argument("--duration", type=_positive_seconds, metavar="S",
                        help="stop after S seconds (default: at Ctrl-C or SIGTERM)")
    parser.add_argument("--interval", type=_positive_seconds, metavar="S",
                        help="print the maps every S seconds, then reset them")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per event or interval instead of text")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


class _ToolParser(argparse.ArgumentParser):
    """Reports bad tool options as a :class:`RunError` instead of exiting."""

    def error(self, message: str) -> Any:
        raise RunError(f"{self.prog}: {message}")


def tool_parser(tool: Tool, defaults: argparse.Namespace | None = None
                ) -> argparse.ArgumentParser:
    """The parser of ``tool``'s command line: the run options plus its own."""
    parser = _ToolParser(prog=f"pykex run {tool.path}", conflict_handler="resolve",
                         description=_first_line(tool.source))
    add_run_arguments(parser)
    if (options := tool.hook("options")) is not None:
        options(parser)
    taken = {action.dest for action in parser._actions}
    for name, var in tool.globals.items():
        if name not in taken:  # every other global can be set too: --name VALUE
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUE",
                                type=_global_value(var),
                                help=f"set the extension's global {name} ({var.type})")
    if defaults is not None:
        parser.set_defaults(**{k: v for k, v in vars(defaults).items() if v not in (None, False)})
    return parser


def _global_value(var: GlobalVar) -> Callable[[str], Any]:
    """How ``--name VALUE`` reads a value for global ``var``: a number (0x.. too),
    or text for a byte array."""
    if getattr(var.type.layout, "kind", "") in ("array", "bytes"):  # type: ignore[attr-defined]
        return str

    def number(text: str) -> int:
        try:
            return int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None

    return number


def _first_line(source: str) -> str | None:
    try:
        doc = ast.get_docstring(ast.parse(source))
    except SyntaxError:
        return None
    return doc.splitlines()[0] if doc else None


def parse_tool_args(tool: Tool, argv: Sequence[str],
                    defaults: argparse.Namespace | None = None) -> argparse.Namespace:
    return tool_parser(tool, defaults).parse_args(list(argv))


# -- running -----------------------------------------------------------------------------------


class _Stop(Exception):
    """Internal: the session ended (duration, Ctrl-C, SIGTERM)."""


class Runner:
    """One run of a tool: load, attach, stream, detach, summarise.

    ``out`` receives events and maps, ``err`` progress, notes and tracebacks.
    """

    def __init__(self, tool: Tool, args: argparse.Namespace, *, out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.tool = tool
        self.args = args
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.json = bool(getattr(args, "json", False))
        self.ext: Extension | None = None
        self.stopped = False
        self.stop_reason = ""
        self.reports: list[ExceptionReport] = []
        self._deadline: float | None = None
        self._rings: dict[str, RingBuffer] = {}
        self._trace: TracePipe | None = None
        self._formats: list[re.Pattern[str]] = []
        self._tables: dict[str, Table] = {}
        self._jsonl = JsonLines(self.out)
        self._links: list[Link] = []  # uprobe links made here rather than by the extension

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> Extension:
        """Compile, load and set the globals the options name."""
        with Progress(f"compiling and loading {self.tool.path}", file=self.err):
            compilation = Compilation(self.tool.path, source=self.tool.source)
            try:
                compilation.compiled  # noqa: B018 -- compile errors surface here
            except CompileError as failure:
                raise RunError(_compile_error_line(failure), located=True) from None
            self.ext = _user_errors(lambda: Extension(compilation), self.tool.path)
        self._set_globals()
        return self.ext

    def _set_globals(self) -> None:
        assert self.ext is not None
        values = {name: value for name, value in vars(self.args).items()
                  if name in self.tool.globals and value is not None}
        for section in (".bss", ".data"):
            chosen = {n: v for n, v in values.items() if self.tool.globals[n].section == section}
            if not chosen:
                continue
            view = self.ext.maps[section]
            data = bytearray(view[0])
            for name, value in chosen.items():
                var = self.tool.globals[name]
                encoded = _encode_global(name, var, value)
                data[var.offset:var.offset + len(encoded)] = encoded
            view[0] = bytes(data)

    # -- attaching ---------------------------------------------------------------------------

    def attach(self) -> None:
        assert self.ext is not None
        if not self.ext.programs:
            raise RunError(f"{self.tool.path} declares no program to run "
                           "(a function decorated with @xdp, @tracepoint, ...)")
        for program in self.ext.programs.values():
            overrides = self._attach_options(program)
            attach = program.attach
            if "binary" in overrides and not hasattr(program, "attach_uprobe"):
                attach = functools.partial(self._attach_uprobe, program)
            _user_errors(lambda a=attach, o=overrides: a(**o), self.tool.path, program=program)

    def _attach_uprobe(self, program: LoadedProgram, binary: str, pid: int = -1) -> Link:
        """Attach a uprobe through pykex.kernel where the extension has no method for it."""
        attach = program.compiled.attach
        link = links.attach_uprobe(program.program, binary, str(attach.get("symbol") or ""),
                                   retprobe=bool(attach.get("retprobe")), pid=pid)
        self._links.append(link)
        return link

    def _attach_options(self, program: LoadedProgram) -> dict[str, Any]:
        kind = program.kind
        if kind in ("xdp", "tc"):
            iface = getattr(self.args, "iface", None)
            if not iface:
                raise RunError(f"{program.name} is an {kind} program: give the network "
                               "interface to attach it to with --iface")
            try:
                socket.if_nametoindex(iface)
            except OSError:
                raise RunError(f"no network interface named {iface!r}") from None
            return {"interface": iface, **({"mode": "auto"} if kind == "xdp" else {})}
        if kind == "kprobe" and "binary" in program.compiled.attach:
            return self._uprobe_options(program)
        if kind == "perf_event":
            if {"frequency", "period"} & set(program.compiled.attach):
                return {}
            return {"frequency": getattr(self.args, "frequency", None) or 49}
        if kind in ("tracepoint", "raw_tracepoint", "kprobe"):
            return {}
        raise RunError(f"pykex run cannot attach {kind} program {program.name!r}; load the "
                       "module with pykex.load() and attach it from Python")

    def _uprobe_options(self, program: LoadedProgram) -> dict[str, Any]:
        options: dict[str, Any] = {}
        binary = getattr(self.args, "binary", None) or program.compiled.attach.get("binary")
        if not binary:
            raise RunError(f"{program.name} is a uprobe: give the executable or library "
                           "to probe with --binary")
        if not os.path.isfile(str(binary)):
            raise RunError(f"--binary {binary}: no such file")
        symbol = program.compiled.attach.get("symbol")
        if symbol:
            try:
                symbol_file_offset(str(binary), str(symbol))
            except (ELFError, LookupError, OSError) as failure:
                raise RunError(f"uprobe {program.name}: {failure}") from None
        options["binary"] = str(binary)
        if getattr(self.args, "pid", None):
            options["pid"] = self.args.pid
        return options

    # -- the event loop -----------------------------------------------------------------------

    def start(self) -> None:
        """Open the event sources: ring buffers and, for modules that print, trace_pipe."""
        assert self.ext is not None
        duration = getattr(self.args, "duration", None)
        self._deadline = time.monotonic() + duration if duration else None
        for name, view in self.ext.maps.items():
            if self.ext.compiled.map(name).kind == "RINGBUF":
                record = self.ext.compiled.map(name).record_type  # the front end's finding
                self._rings[name] = RingBuffer(view, decode=record)
        self._formats = _print_formats(self.ext)
        if self._formats:
            self._trace = TracePipe()

    def stop_after(self, seconds: float) -> None:
        """End the run ``seconds`` from now (or at ``--duration``, if sooner)."""
        deadline = time.monotonic() + seconds
        self._deadline = deadline if self._deadline is None else min(self._deadline, deadline)

    def stop(self, reason: str = "stopped") -> None:
        if not self.stopped:
            self.stopped, self.stop_reason = True, reason

    def sleep(self, seconds: float) -> None:
        """Service the event sources for ``seconds``; raises KeyboardInterrupt when
        the run ends meanwhile (what :func:`~pykex.runtime.output.intervals` expects)."""
        try:
            self._serve(time.monotonic() + seconds, on_event=self._show_event)
        except _Stop:
            raise KeyboardInterrupt from None

    def events(self, ring: str | None = None) -> Iterator[Any]:
        """Decoded records of ``ring`` (the module's only ring buffer by default)
        as they arrive, until the run ends."""
        name = self._ring_name(ring)
        pending: list[Any] = []

        def keep(source: str, record: Any) -> None:
            if source == name:
                pending.append(record)
            else:
                self._show_event(source, record)

        while True:
            try:
                self._serve(None, on_event=keep, until_event=lambda: bool(pending))
            except _Stop:
                yield from pending
                return
            yield from pending
            pending.clear()

    def ticks(self) -> Iterator[Tick]:
        """:func:`~pykex.runtime.output.intervals` of the tool's ``interval`` and
        ``count`` (or ``--interval``), ending with the run."""
        seconds = getattr(self.args, "interval", None)
        count = getattr(self.args, "count", None)
        return intervals(seconds, count, sleep=self.sleep)

    def _ring_name(self, ring: str | None) -> str:
        if ring is not None:
            if ring not in self._rings:
                raise RunError(f"{self.tool.path} has no ring buffer {ring!r} "
                               f"(it has: {', '.join(self._rings) or 'none'})")
            return ring
        if len(self._rings) != 1:
            raise RunError(f"{self.tool.path} has {len(self._rings)} ring buffers: "
                           "name the one to read, events('name')")
        return next(iter(self._rings))

    def _serve(self, until: float | None, *, on_event: Callable[[str, Any], None],
               until_event: Callable[[], bool] = lambda: False) -> None:
        """Drain every source until ``until`` (monotonic), ``until_event()``, or the
        run's end (which raises :class:`_Stop` once everything left is shown)."""
        poller = select.poll()
        for ring in self._rings.values():
            poller.register(ring.fileno(), select.POLLIN)
        if self._trace is not None:
            poller.register(self._trace.fileno(), select.POLLIN)
        while True:
            self._drain(on_event)
            now = time.monotonic()
            if self._deadline is not None and now >= self._deadline:
                self.stop("duration")
            if self.stopped:
                self._drain(on_event)
                raise _Stop
            if until_event() or (until is not None and now >= until):
                return
            ends = [t for t in (until, self._deadline) if t is not None]
            wait = min([_POLL_SECONDS, *(t - now for t in ends)])
            poller.poll(max(wait, 0) * 1000)

    def _drain(self, on_event: Callable[[str, Any], None]) -> None:
        assert self.ext is not None
        for name, ring in self._rings.items():
            ring.consume(lambda record, n=name: on_event(n, record))
        if self._trace is not None:
            for line in self._trace.read():
                if any(f.fullmatch(line.message) for f in self._formats):
                    self._show_trace(line)
        for report in self.ext.errors(timeout=0):
            self.reports.append(report)
            self._show_report(report)

    # -- showing -------------------------------------------------------------------------

    def _show_event(self, ring: str, record: Any) -> None:
        if self.json:
            self._jsonl.emit({"ring": ring, **_record_fields(record)})
            return
        table = self._tables.get(ring)
        if table is None:
            table = self._tables[ring] = Table(_columns_for(record), file=self.out)
            table.header()
        table.row(*(_display(v) for v in _record_fields(record).values()))

    def _show_trace(self, line: TraceLine) -> None:
        if self.json:
            self._jsonl.emit({"trace": line.message, "task": line.task, "pid": line.pid,
                              "cpu": line.cpu, "timestamp": line.timestamp})
        else:
            self.out.write(f"{line.task}-{line.pid} [{line.cpu:03}] {line.timestamp:.6f}: "
                           f"{line.message}\n")
            self.out.flush()

    def _show_report(self, report: ExceptionReport) -> None:
        if self.json:
            self._jsonl.emit({"exception": report.kind, "message": report.message,
                              "program": report.program, "traceback": str(report)})
            return
        self.err.write(colorize(f"{report.program} raised:\n{report}", "red", self.err) + "\n")
        self.err.flush()

    def show_maps(self, *, reset: bool = False) -> None:
        """Print every map of the module (histograms as declared); ``reset`` empties
        them afterwards, for interval output."""
        assert self.ext is not None
        stamp = time.strftime("%H:%M:%S")
        for name, view in self.ext.maps.items():
            if name.startswith(".") or name in self._rings:  # globals, runtime maps
                continue
            spec = self.tool.histograms.get(name)
            if spec is not None:
                self._show_histogram(name, view, spec, stamp)
            else:
                self._show_table(name, view, stamp)
            if reset:
                _reset(view)

    def _show_histogram(self, name: str, view: Any, spec: HistogramSpec, stamp: str) -> None:
        items = [(k, v) for k, v in view.items() if _count(v)]
        sectioned = bool(items) and isinstance(items[0][0], Struct)
        if sectioned:
            sections = HistogramSections.from_map(dict(items), spec.kind, val_type=spec.unit)
            if self.json:
                self.out.write(sections.to_json(section_header="section"))
            else:
                self.out.write(f"\n{name}:")
                sections.print(self.out, section_header=_first_field(items[0][0]))
        else:
            hist = spec.kind.from_map(dict(items), val_type=spec.unit)
            if self.json:
                self._jsonl.emit({"map": name, "time": stamp, **hist.to_dict()})
            else:
                self.out.write(f"\n{name}:\n" + (hist.format() or "     (empty)\n"))
        self.out.flush()

    def _show_table(self, name: str, view: Any, stamp: str) -> None:
        rows = [(k, _summed(v)) for k, v in view.items()]
        rows = [(k, v) for k, v in rows if _count(v) or not _is_array(view)]
        rows.sort(key=_sort_key)
        if self.json:
            self._jsonl.emit({"map": name, "time": stamp, "entries": [
                {"key": _plain(k), "value": _plain(v)} for k, v in rows]})
            return
        self.out.write(f"\n{name}:\n")
        if not rows:
            self.out.write("  (empty)\n")
            return
        key_cells = [_flat("KEY", k) for k, _ in rows]
        value_cells = [_flat("VALUE", v) for _, v in rows]
        headers = [*key_cells[0], *value_cells[0]]
        cells = [[*(_display(x) for x in kc.values()), *(_display(x) for x in vc.values())]
                 for kc, vc in zip(key_cells, value_cells, strict=True)]
        widths = [max(len(h), *(len(str(row[i])) for row in cells)) for i, h in
                  enumerate(headers)]
        numeric = [all(isinstance(row[i], int) for row in cells) for i in range(len(headers))]
        columns = [Column(h.upper(), w, ">" if n else "<")
                   for h, w, n in zip(headers, widths, numeric, strict=True)]
        table = Table([Column("", 1), *columns], file=self.out)
        table.header()
        for row in cells:
            table.row("", *row)
        self.out.flush()

    # -- the whole run ---------------------------------------------------------------------------

    def run(self, on_attached: Callable[[Runner], object] | None = None) -> int:
        """Load, attach, stream until the end, detach and summarise; the exit status.

        ``on_attached`` is called once every program is attached, before any
        output (to start a workload the tool should see, in demos and tests).
        """
        self.load()
        try:
            self.attach()
            self.start()
            if on_attached is not None:
                on_attached(self)
            with _signals_stop(self):
                main = self.tool.hook("main")
                if main is not None:
                    self.args.session = self
                    # What main() prints goes where the run's output goes.
                    with contextlib.redirect_stdout(self.out):
                        main(self.ext, self.args)
                else:
                    self._default_display()
        finally:
            self.close()
        return 0

    def _default_display(self) -> None:
        assert self.ext is not None
        what = ", ".join(f"{p.name} ({p.kind})" for p in self.ext.programs.values())
        self.err.write(f"Running {what}. Hit Ctrl-C to end.\n")  # stderr: JSON stays clean
        self.err.flush()
        interval = getattr(self.args, "interval", None)
        try:
            while True:
                self._serve(None if interval is None else time.monotonic() + interval,
                            on_event=self._show_event)
                self.show_maps(reset=True)
        except _Stop:
            pass
        self.detach()
        self.show_maps()

    def detach(self) -> None:
        for link in self._links:
            link.detach()
        self._links.clear()
        if self.ext is not None:
            for link in self.ext.links:
                link.detach()

    def close(self) -> None:
        self.detach()
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()
        if self._trace is not None:
            self._trace.close()
            self._trace = None
        if self.ext is not None:
            self.ext.close()

    def table(self, columns: Sequence[Column | tuple[str, int] | str]) -> Table:
        """A :class:`~pykex.runtime.output.Table` on this run's output, JSON when ``--json``."""
        return Table(columns, file=self.out, json=self.json)

    def note(self, text: str) -> None:
        """A line for people ("Tracing... Hit Ctrl-C to end."): on standard error,
        and not at all with ``--json``."""
        if not self.json:
            self.err.write(text + "\n")
            self.err.flush()


class _signals_stop:
    """SIGINT and SIGTERM end the run gracefully; a second SIGINT interrupts at once."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.runner.stopped:
            raise KeyboardInterrupt
        self.runner.stop(signal.Signals(signum).name)

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.saved[signum] = signal.signal(signum, self._handle)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def run_tool(path: str | os.PathLike[str], argv: Sequence[str] = (), *,
             defaults: argparse.Namespace | None = None, out: TextIO | None = None,
             err: TextIO | None = None,
             on_attached: Callable[[Runner], object] | None = None) -> int:
    """Run the tool at ``path`` with command-line ``argv``; the exit status."""
    tool = Tool.read(path)
    args = parse_tool_args(tool, argv, defaults)
    return Runner(tool, args, out=out, err=err).run(on_attached)


# -- helpers ------------------------------------------------------------------------------------


def _compile_error_line(failure: CompileError) -> str:
    diagnostics = failure.diagnostics
    if not diagnostics:
        return str(failure)
    first = diagnostics[0]
    more = len(diagnostics) - 1
    tail = f" (and {more} more; pykex check shows them all)" if more else ""
    hint = f" (hint: {first.hint})" if first.hint else ""
    return f"{first.headline}{hint}{tail}"


def _user_errors(action: Callable[[], Any], path: str,
                 program: LoadedProgram | None = None) -> Any:
    """Run ``action``, turning what users cause into a one-line :class:`RunError`."""
    what = f"program {program.name!r} of {path}" if program else path
    try:
        return action()
    except PermissionDeniedError:
        raise RunError(f"loading {path} needs root (CAP_BPF and CAP_PERFMON, or "
                       "CAP_SYS_ADMIN): run pykex run with sudo") from None
    except NotSupportedError as failure:
        raise RunError(f"{what}: this kernel does not support {failure.feature}") from None
    except PermissionError as failure:
        raise RunError(f"{what}: {failure.strerror or failure}; pykex run needs root") from None
    except BPFError as failure:
        raise RunError(f"{what}: {failure}") from None
    except FileNotFoundError as failure:
        raise RunError(f"{what}: {failure}") from None
    except LookupError as failure:  # a uprobe's symbol that the binary lacks
        raise RunError(f"{what}: {failure.args[0] if failure.args else failure}") from None


def _encode_global(name: str, var: GlobalVar, value: Any) -> bytes:
    layout = var.type.layout  # type: ignore[attr-defined]
    if isinstance(value, str | bytes):
        raw = value.encode() if isinstance(value, str) else value
        if layout.kind not in ("array", "bytes") or layout.size < 1:
            raise RunError(f"option {name}: text cannot set global {name} of type {var.type}")
        return raw[: layout.size - 1].ljust(layout.size, b"\0")  # keep a C string's NUL
    number = int(value)
    try:
        return layout.encode(number)
    except (TypeError, ValueError, OverflowError):
        raise RunError(f"option {name}: {number} does not fit in global {name} "
                       f"({var.type})") from None


def _print_formats(ext: Extension) -> list[re.Pattern[str]]:
    """Regular expressions matching the lines the module's print() calls write."""
    try:
        rodata = ext.compiled.map(".rodata").initial or b""
    except KeyError:
        return []
    patterns = []
    for text in rodata.split(b"\0"):
        if not text:
            continue
        fmt = text.decode(errors="replace").rstrip("\n")
        pieces, last = [], 0
        for spec in _PRINTK_SPEC.finditer(fmt):
            pieces.append(re.escape(fmt[last:spec.start()]))
            conv = spec.group(2)
            pieces.append("%" if spec.group(1) == "%" else {
                "d": r"-?\d+", "i": r"-?\d+", "u": r"\d+", "x": "[0-9a-f]+", "X": "[0-9A-F]+",
            }.get(conv or "", ".*?"))
            last = spec.end()
        pieces.append(re.escape(fmt[last:]))
        patterns.append(re.compile("".join(pieces)))
    return patterns


def _record_fields(record: Any) -> dict[str, Any]:
    if isinstance(record, Struct):
        return {f.name: getattr(record, f.name) for f in type(record).fields}
    return {"data": record.hex() if isinstance(record, bytes) else record}


def _columns_for(record: Any) -> list[Column]:
    columns = []
    for name, value in _record_fields(record).items():
        text = str(_display(value))
        width = max(len(name), len(text), 6 if isinstance(value, int) else 0)
        columns.append(Column(name.upper(), width, ">" if isinstance(value, int) else "<"))
    columns[-1] = Column(columns[-1].name, 0, columns[-1].align)
    return columns


def _display(value: Any) -> Any:
    """A field as people read it: C strings as text, 4-byte arrays as dotted quads."""
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode(errors="replace")
    if isinstance(value, list) and value and all(isinstance(x, int) for x in value):
        if len(value) == 4 and all(0 <= x < 256 for x in value):
            return ".".join(map(str, value))
        if len(value) >= 8 and all(0 <= x < 256 for x in value):
            return bytes(value).split(b"\0", 1)[0].decode(errors="replace")
    if isinstance(value, Struct | list):
        return str(_plain(value))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Struct):
        return {f.name: _plain(getattr(value, f.name)) for f in type(value).fields}
    if isinstance(value, bytes):
        return _display(value)
    if isinstance(value, list):
        shown = _display(value)
        return shown if isinstance(shown, str) else [_plain(x) for x in value]
    return value


def _flat(label: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Struct):
        return {f.name: getattr(value, f.name) for f in type(value).fields}
    return {label: value}


def _summed(value: Any) -> Any:
    return sum_per_cpu(value) if isinstance(value, list) and value and isinstance(
        value[0], int | Struct) else value


def _count(value: Any) -> int:
    value = _summed(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Struct):
        return sum(_count(getattr(value, f.name)) for f in type(value).fields)
    return 1


def _sort_key(item: tuple[Any, Any]) -> tuple[Any, ...]:
    """Counts biggest first (as BCC tools print them), then by key."""
    key, value = item
    size = -value if isinstance(value, int) else -_count(value)
    return (size, str(_plain(key)))


def _is_array(view: Any) -> bool:
    return "Array" in type(view).__name__


def _first_field(key: Any) -> str:
    return type(key).fields[0].name


def _reset(view: Any) -> None:
    if _is_array(view):
        for index in range(view.max_entries):
            view[index] = _zero_like(view[index])
        return
    for key in list(view):
        try:
            del view[key]
        except KeyError:
            continue


def _zero_like(value: Any) -> Any:
    if isinstance(value, list):
        return [_zero_like(v) for v in value]
    if isinstance(value, Struct):
        return type(value).zero()  # type: ignore[attr-defined]
    return 0
