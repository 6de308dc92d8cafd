"""An extension live in the kernel: its programs, typed maps and error channel.

:func:`load` compiles a module, creates its maps and loads its programs, all
or nothing (:func:`pykex.bpf.codegen.load`), and returns an
:class:`Extension`::

    with pykex.load("fw.py") as ext:
        with ext.firewall.attach(interface="veth0"):
            ...
        print(ext.stats[6])                 # a Counter struct per CPU
        for report in ext.errors(timeout=0):
            print(report)                   # a Python-style traceback

``ext.variable(name)`` reads a module global: the bytes it holds now in its
``.bss`` or ``.data`` map, where user space may also have changed it.

Ring buffers and perf event arrays come as an :class:`EventView`:
``ext.events.drain()`` takes the records sent so far and
``ext.events.records(timeout)`` waits for more, both decoded with the record
Struct the compiler found for the map (bytes when it sends several kinds);
``ext.events.drops`` counts the records that found it full. A perf event
array gets its per-CPU buffers when the extension loads, so that no sample is
lost before the first read.

Exceptions reach user space through the error channel (a ring buffer of
records, see :mod:`pykex.bpf.codegen.runtime`); :meth:`LoadedProgram.test_run`
reads the records its run produced right after the run, and
:meth:`Extension.errors` yields the others. Closing the extension detaches
every link it made and releases every map and program.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Iterator
from typing import Any, Literal

from pykex.bpf.codegen import (
    ERRORS_LOST_MAP,
    ERRORS_MAP,
    EXC_COUNT_MAP,
    CompiledProgram,
    LoadedModule,
)
from pykex.bpf.codegen import load as load_module
from pykex.compiler import Compilation
from pykex.ir.nodes import ModuleIR
from pykex.kernel import Program
from pykex.kernel import link as links
from pykex.kernel.maps import Map, PerCpuArrayMap
from pykex.kernel.perfbuf import PerfBuffer
from pykex.kernel.ringbuf import RingBuffer
from pykex.kernel.uapi import AttachType
from pykex.lang.resources import DROPS_MAP
from pykex.layout import u32, u64

from .base import ExceptionCounts, ExtensionParts, RunResult, check_test_input, clear_crash_flag
from .errors import ExceptionReport, ReportDecoder
from .hostmaps import record_decoder

Loadable = str | os.PathLike[str] | Compilation | ModuleIR


def compilation_of(target: Loadable, source: str | None, opt_level: int) -> Compilation:
    if isinstance(target, Compilation):
        return target
    if isinstance(target, ModuleIR):
        return Compilation.from_ir(target, opt_level)
    return Compilation(target, source=source, opt_level=opt_level)


def load(path: Loadable, *, source: str | None = None, opt_level: int = 1) -> Extension:
    """Compile the extension at ``path`` and load it into the kernel. ``path``
    may also be a ready :class:`Compilation` or IR built elsewhere."""
    return Extension(compilation_of(path, source, opt_level))


class EventView:
    """The records a ring buffer or perf event array of a loaded extension
    receives (see the module docs). ``fd`` is the map's, so
    :class:`~pykex.kernel.ringbuf.RingBuffer` and friends accept the view."""

    def __init__(self, extension: Extension, name: str, events: Map) -> None:
        decl = extension.compiled.map(name)
        self.extension = extension
        self.name = name
        self.kind = decl.kind
        self.record_type = decl.record_type
        self.map = events
        self._perf = decl.kind == "PERF_EVENT_ARRAY"
        # The kernel drops perf samples for a CPU without a buffer in the map.
        self._reader: RingBuffer | PerfBuffer | None = PerfBuffer(events) if self._perf else None

    @property
    def fd(self) -> Any:
        return self.map.fd

    @property
    def drops(self) -> int:
        """Records the map had no room for (the ``.data.drops`` global's field)."""
        drops = self.extension.maps.get(DROPS_MAP)
        return int(getattr(drops[0], self.name, 0)) if drops is not None else 0

    def _open(self) -> RingBuffer | PerfBuffer:
        if self._reader is None:
            self._reader = RingBuffer(self.map)
        return self._reader

    def drain(self, decode: Any = None) -> list[Any]:
        """The records that arrived so far, oldest first (per CPU for perf),
        decoded with ``decode`` (a layout type or a callable) or the map's record type."""
        convert = record_decoder(decode, self.record_type, self._perf)
        return [convert(record) for record in self._open().drain()]

    def records(self, timeout: float | None = 0.0, decode: Any = None) -> Iterator[Any]:
        """Yield records as they arrive, until none came for ``timeout`` seconds
        (0: only those already there; None: forever)."""
        convert = record_decoder(decode, self.record_type, self._perf)
        for record in self._open().records(timeout):
            yield convert(record)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def __repr__(self) -> str:
        return f"<EventView {self.name!r} {self.kind.lower()}>"


class LoadedProgram:
    """One program of a loaded extension."""

    def __init__(
        self, extension: Extension, compiled: CompiledProgram, program: Program
    ) -> None:
        self.extension = extension
        self.compiled = compiled
        self.program = program

    @property
    def name(self) -> str:
        return self.compiled.name

    @property
    def kind(self) -> str:
        return self.compiled.kind.name

    @property
    def fd(self) -> Any:
        return self.program.fd

    def __repr__(self) -> str:
        return f"<LoadedProgram {self.name} ({self.kind})>"

    # -- running ------------------------------------------------------------------

    def test_run(
        self, packet: bytes = b"", *, repeat: int = 1, ctx: bytes | None = None
    ) -> RunResult:
        """Run the program once (or ``repeat`` times) on ``packet`` with
        BPF_PROG_TEST_RUN; the result includes the exceptions the run raised
        (were the program also attached, reports its hook produced meanwhile
        would be counted as the run's)."""
        data = bytes(packet)
        check_test_input(self.name, self.kind, data, repeat)
        self.extension._collect_reports()  # earlier reports are not this run's
        if self.kind in CONTEXT_ONLY_KINDS:
            # The kernel runs these once per call, on the context alone.
            for _ in range(repeat):
                result = self.program.test_run(repeat=0, ctx=bytes(ctx or b""), ctx_out_size=0)
        else:
            result = self.program.test_run(data, repeat=repeat, ctx=bytes(ctx or b""))
        raised = self.extension._collect_reports(programs=self._reachable)
        return RunResult(
            retval=result.retval,
            packet=result.data_out,
            exceptions=tuple(raised),
            duration_ns=result.duration_ns,
            ctx=result.ctx_out or bytes(ctx or b""),
        )

    @property
    def _reachable(self) -> frozenset[str]:
        """The programs a run of this one may end in: itself, and those of its kind
        when the module has a program array to tail-call through."""
        module = self.extension.compiled
        if not any(m.kind == "PROG_ARRAY" for m in self.extension.compilation.optimized_ir.maps):
            return frozenset({self.name})
        return frozenset(p.name for p in module.programs if p.kind == self.compiled.kind)

    # -- attaching ----------------------------------------------------------------

    def reenable(self) -> None:
        """Let a crash-stop program run again after an exception disabled it."""
        clear_crash_flag(self.extension.maps, self.name)

    def attach(self, **overrides: Any) -> links.Link:
        """Attach where the decorator says; ``overrides`` go to the ``attach_*``
        method of the program's kind (``interface=`` for xdp and tc, which the
        source cannot know; ``mode=``, ``direction=``, ``name=``, ``binary=``...)."""
        if self.kind == "kprobe" and "binary" in self.compiled.attach:
            return self.attach_uprobe(**overrides)
        method = _ATTACHERS.get(self.kind)
        if method is None:
            raise TypeError(f"pykex cannot attach {self.kind} programs such as {self.name!r}")
        return getattr(self, method)(**overrides)

    def attach_xdp(
        self,
        interface: str | int | None = None,
        mode: Literal["native", "generic", "auto"] = "native",
    ) -> links.Link:
        self._require("xdp", "attach_xdp")
        return self._keep(links.attach_xdp(self.program, self._interface(interface), mode))

    def attach_tcx(
        self,
        interface: str | int | None = None,
        direction: Literal["ingress", "egress"] | None = None,
    ) -> links.Link:
        self._require("tc", "attach_tcx")
        chosen = direction or self.compiled.attach.get("direction", "ingress")
        return self._keep(links.attach_tcx(self.program, self._interface(interface), chosen))

    def attach_tracepoint(self, name: str | None = None) -> links.Link:
        self._require("tracepoint", "attach_tracepoint")
        return self._keep(links.attach_tracepoint(self.program, name or self._target()))

    def attach_raw_tracepoint(self, name: str | None = None) -> links.Link:
        self._require("raw_tracepoint", "attach_raw_tracepoint")
        return self._keep(links.attach_raw_tracepoint(self.program, name or self._target()))

    def attach_socket_filter(self, sock: socket.socket | None = None) -> links.Link:
        self._require("socket_filter", "attach_socket_filter")
        if sock is None:
            raise TypeError(f"attaching socket filter {self.name!r} needs sock=<a socket>")
        return self._keep(links.attach_socket_filter(self.program, sock))

    def attach_cgroup(self, cgroup: str | None = None) -> links.Link:
        self._require("cgroup_skb", "attach_cgroup")
        if cgroup is None:
            raise TypeError(f"attaching {self.name!r} needs cgroup=<a cgroup v2 directory>")
        # The direction was fixed at load time (the program's expected attach type).
        attach_type = AttachType(self.compiled.expected_attach_type)
        return self._keep(links.attach_cgroup(self.program, cgroup, attach_type))

    def attach_kprobe(
        self, function: str | None = None, retprobe: bool | None = None
    ) -> links.Link:
        """A kprobe (or, as declared or with ``retprobe``, a kretprobe) on ``function``."""
        self._require("kprobe", "attach_kprobe")
        target = function or self.compiled.attach.get("function")
        if not isinstance(target, str):
            raise TypeError(f"attaching kprobe {self.name!r} needs function=<kernel function>")
        return self._keep(links.attach_kprobe(self.program, target,
                                              retprobe=self._retprobe(retprobe)))

    def attach_uprobe(
        self,
        binary: str | None = None,
        symbol: str | None = None,
        retprobe: bool | None = None,
        pid: int = -1,
    ) -> links.Link:
        """A uprobe (or uretprobe) on ``symbol`` of ``binary``, as the decorator
        says unless given; ``pid`` -1 probes every process that maps the file."""
        self._require("kprobe", "attach_uprobe")
        path = binary or self.compiled.attach.get("binary")
        if not isinstance(path, str):
            raise TypeError(f"attaching uprobe {self.name!r} needs binary=<executable or library>")
        name = symbol or self.compiled.attach.get("symbol")
        link = links.attach_uprobe(self.program, path, str(name) if name else None,
                                   retprobe=self._retprobe(retprobe), pid=pid)
        return self._keep(link)

    def _retprobe(self, given: bool | None) -> bool:
        return bool(self.compiled.attach.get("retprobe")) if given is None else given

    def attach_perf_event(
        self, frequency: int | None = None, period: int | None = None, event: str = "cpu-clock"
    ) -> links.Link:
        self._require("perf_event", "attach_perf_event")
        link = links.attach_perf_event(
            self.program, frequency=frequency, period=period, event=event
        )
        return self._keep(link)

    def _require(self, kind: str, method: str) -> None:
        if self.kind != kind:
            raise TypeError(
                f"{method} needs a {kind} program, but {self.name!r} is a {self.kind} program"
            )

    def _interface(self, interface: str | int | None) -> str | int:
        if interface is None:
            raise TypeError(
                f"attaching {self.kind} program {self.name!r} needs interface=<name or index>"
            )
        return interface

    def _target(self) -> str:
        return str(self.compiled.attach["tracepoint"])

    def _keep(self, link: links.Link) -> links.Link:
        self.extension._links.append(link)
        return link


# Kinds whose BPF_PROG_TEST_RUN takes only a context and no repeat count.
CONTEXT_ONLY_KINDS = frozenset({"raw_tracepoint"})

_ATTACHERS = {
    "xdp": "attach_xdp",
    "tc": "attach_tcx",
    "tracepoint": "attach_tracepoint",
    "raw_tracepoint": "attach_raw_tracepoint",
    "socket_filter": "attach_socket_filter",
    "cgroup_skb": "attach_cgroup",
    "kprobe": "attach_kprobe",
    "perf_event": "attach_perf_event",
}


class Extension(ExtensionParts):
    """A compiled extension whose maps and programs are live in the kernel.

    ``programs`` maps names to :class:`LoadedProgram`, ``maps`` names to typed
    :class:`~pykex.kernel.maps.Map` views (the module's own maps; the runtime's
    frame and error-channel maps stay hidden). Both are also attributes.
    """

    def __init__(self, compilation: Compilation) -> None:
        self.compilation = compilation
        self.compiled = compilation.compiled
        self._decoder = ReportDecoder(self.compiled)
        self._links: list[links.Link] = []
        self._pending: deque[ExceptionReport] = deque()
        self._owned: list[Map | RingBuffer | EventView] = []
        self._closed = False
        self.module: LoadedModule = load_module(self.compiled)
        try:
            self._ring = self._own(RingBuffer(self.module.maps[ERRORS_MAP]))
            self._counts = self._own(self._counter(EXC_COUNT_MAP))
            self._lost = self._own(self._counter(ERRORS_LOST_MAP))
            self.maps: dict[str, Map | EventView] = {}
            for decl in compilation.optimized_ir.maps:
                self.maps[decl.name] = self._view(decl.name)
        except BaseException:
            self.close()
            raise
        self.programs: dict[str, LoadedProgram] = {
            program.name: LoadedProgram(self, program, self.module.programs[program.name])
            for program in self.compiled.programs
        }

    def _own(self, thing: Any) -> Any:
        self._owned.append(thing)
        return thing

    def _counter(self, name: str) -> PerCpuArrayMap:
        view = Map.from_fd(self.module.map_fd(name), key_type=u32, value_type=u64)
        assert isinstance(view, PerCpuArrayMap)
        return view

    def _view(self, name: str) -> Map | EventView:
        """The module map's typed view; maps declared without layout types get
        the default one (ints for 1, 2, 4 and 8 bytes, else bytes); event maps
        an :class:`EventView`."""
        decl = self.compiled.map(name)
        if decl.kind in ("RINGBUF", "PERF_EVENT_ARRAY"):
            return self._own(EventView(self, name, self.module.maps[name]))
        if decl.key_type is not None and decl.value_type is not None:
            return self.module.maps[name]
        return self._own(
            Map.from_fd(
                self.module.map_fd(name), key_type=decl.key_type, value_type=decl.value_type
            )
        )

    # -- the error channel ----------------------------------------------------------

    def exceptions(self) -> ExceptionCounts:
        """How often each site and each program raised (summed over CPUs)."""
        counts = {site_id: sum(per_cpu) for site_id, per_cpu in self._counts.items()}
        return ExceptionCounts.from_sites(self.compiled, counts)

    @property
    def lost_reports(self) -> int:
        """Reports the error channel had no room for (the counters still count them)."""
        return sum(self._lost[0])

    def errors(self, timeout: float | None = 0.0) -> Iterator[ExceptionReport]:
        """Decoded exception reports, oldest first, until none arrived for
        ``timeout`` seconds (0: only those already there; None: forever)."""
        if self._closed:
            raise ValueError(f"extension {self.compiled.file} is closed")
        while self._pending:
            yield self._pending.popleft()
        if timeout == 0:
            self._collect_reports()
            while self._pending:
                yield self._pending.popleft()
            return
        for record in self._ring.records(timeout):
            yield self._decoder.decode_bytes(record)

    def _collect_reports(self, programs: frozenset[str] = frozenset()) -> list[ExceptionReport]:
        """Drain the error channel. Reports of ``programs`` are returned; the
        others wait in the queue :meth:`errors` reads first."""
        taken = []
        for record in self._ring.drain():
            report = self._decoder.decode_bytes(record)
            if report.program in programs:
                taken.append(report)
            else:
                self._pending.append(report)
        return taken

    # -- lifetime -------------------------------------------------------------------

    @property
    def links(self) -> list[links.Link]:
        """The links this extension made that are still attached."""
        return [link for link in self._links if link.attached]

    def close(self) -> None:
        """Detach every link made through this extension, then release maps and programs."""
        self._closed = True
        for link in self._links:
            link.detach()
        self._links.clear()
        for thing in self._owned:
            thing.close()
        self._owned.clear()
        if "module" in self.__dict__:
            self.module.close()

    def __enter__(self) -> Extension:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Extension {self.compiled.file}: programs {', '.join(self.programs)}; "
            f"maps {', '.join(self.maps)}>"
        )
