"""Host mode: an extension run in CPython, no kernel and no root needed.

The programs that run are the ones the kernel would run: the optimised IR the
backend compiles, executed by :mod:`pykex.ir.interp` (never the Python
function bodies of the module, whose semantics differ: unbounded ints,
dictionaries for maps). Maps are emulated; per-CPU maps have one value per
possible CPU of this machine and the programs run on CPU ``cpu``. Exceptions
become the same :class:`~pykex.runtime.errors.ExceptionReport` as in the
kernel, numbered by the same site table, and are counted the same way::

    ext = pykex.load_host("fw.py")
    result = ext.firewall.test_run(packet=frame)
    assert result.retval == XDP_DROP and ext.stats[6][0].packets == 1

Programs of every kind run on a given context with ``test_run(ctx=...)``:
tracepoint programs on the bytes of their tracepoint's record, raw
tracepoint programs on their arguments as u64s. Test runs follow
BPF_PROG_TEST_RUN: socket filters and cgroup skb programs see the packet from
its network header, skb contexts carry what the kernel derives from the frame.

What the kernel would take from the running system comes from a
:class:`~pykex.ir.interp.HostProcess` (this thread by default): the ids,
``comm()``, the ``task_struct`` that ``current_task()`` reads (laid out at
the offsets of this machine's vmlinux BTF), the call stacks and the memory
that ``user_string()`` and the probe reads find::

    text = 0x7F00_0000_1000
    ext = pykex.load_host("probe.py", process=HostProcess.current(
        memory={text: b"hello\0"}, user_stack=(0x401000, 0x402000)))
    ext.probe.test_run(ctx=struct.pack("<Q", text) + bytes(88))
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from pykex.bpf.codegen import CompiledModule, ExceptionSite
from pykex.btf import BTFError, Kind, load_vmlinux
from pykex.compiler import Compilation
from pykex.ir.interp import (
    DEFAULT_LOOP_BUDGET,
    EVENT_KINDS,
    MASK64,
    FakeMemory,
    HostProcess,
    Interpreter,
    RaisedException,
)
from pykex.ir.nodes import ProgramIR
from pykex.kernel.maps import possible_cpus
from pykex.lang.resources import DROPS_MAP

from .base import (
    ExceptionCounts,
    ExtensionParts,
    RunResult,
    check_test_input,
    clear_crash_flag,
    error_channel_capacity,
)
from .errors import ExceptionReport, SourceLines, report_for_site
from .extension import Loadable, compilation_of
from .hostmaps import HostEventView, HostMapView


def load_host(
    path: Loadable,
    *,
    source: str | None = None,
    opt_level: int = 1,
    cpu: int = 0,
    loop_budget: int = DEFAULT_LOOP_BUDGET,
    seed: int = 0,
    process: HostProcess | None = None,
) -> HostExtension:
    """Compile the extension at ``path`` and run it in CPython (see the module docs)."""
    return HostExtension(
        compilation_of(path, source, opt_level), cpu=cpu, loop_budget=loop_budget, seed=seed,
        process=process,
    )


# Where the fake kernel objects of a HostProcess live, past its task_struct.
_PAGE = 4096


def task_memory(process: HostProcess) -> dict[int, bytes]:
    """Kernel memory holding ``process``'s ``task_struct``, its parent's and its
    credentials, at the offsets of this machine's vmlinux BTF (nothing when the
    machine has no BTF: reads of the task then fail as for a bad pointer)."""
    try:
        spec = load_vmlinux()
        task_size = spec.sizeof(spec.find("task_struct", Kind.STRUCT))
        cred_size = spec.sizeof(spec.find("cred", Kind.STRUCT))
    except (BTFError, OSError):
        return {}
    stride = -(-task_size // _PAGE) * _PAGE
    task_at = process.task_address
    parent_at, cred_at = task_at + stride, task_at + 2 * stride

    def image(struct: str, size: int, members: Mapping[str, int | bytes]) -> bytes:
        data = bytearray(size)
        for path, value in members.items():
            try:
                found = spec.member(spec.find(struct, Kind.STRUCT), path)
            except BTFError:
                raise ValueError(f"struct {struct} has no member {path!r}") from None
            if found.bitfield_size:
                raise ValueError(f"{struct}.{path} is a bitfield; set the bytes around it")
            start = found.byte_offset
            if isinstance(value, bytes):
                data[start : start + found.size] = value[: found.size].ljust(found.size, b"\0")
            else:
                data[start : start + found.size] = (value % (1 << 8 * found.size)).to_bytes(
                    found.size, "little")
        return bytes(data)

    ids = {name: process.uid for name in ("uid", "euid", "suid", "fsuid")}
    ids |= {name: process.gid for name in ("gid", "egid", "sgid", "fsgid")}
    task = {"pid": process.pid, "tgid": process.tgid, "comm": process.comm[:15],
            "real_parent": parent_at, "parent": parent_at, "group_leader": task_at,
            "cred": cred_at, "real_cred": cred_at, **process.task}
    parent = {"pid": process.ppid, "tgid": process.ppid, "group_leader": parent_at}
    return {task_at: image("task_struct", task_size, task),
            parent_at: image("task_struct", task_size, parent),
            cred_at: image("cred", cred_size, ids)}


def _cpu_count() -> int:
    try:
        return len(possible_cpus())
    except OSError:  # no sysfs: not Linux
        return os.cpu_count() or 1


class HostProgram:
    """One program of a host-mode extension."""

    def __init__(self, extension: HostExtension, program: ProgramIR) -> None:
        self.extension = extension
        self.ir = program

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def kind(self) -> str:
        return self.ir.kind

    @property
    def id(self) -> int:
        """What a program array holds for this program (``ext.progs[0] = ext.parse``)."""
        return self.extension.interpreter.program_id(self.name)

    def __repr__(self) -> str:
        return f"<HostProgram {self.name} ({self.kind})>"

    def test_run(
        self,
        packet: bytes = b"",
        *,
        repeat: int = 1,
        ctx: bytes | None = None,
        process: HostProcess | None = None,
        memory: Mapping[int, bytes] | None = None,
    ) -> RunResult:
        """Run the program ``repeat`` times, as BPF_PROG_TEST_RUN would: each run
        sees the packet the one before left; the result is the last run's.
        ``process`` replaces the extension's process for these runs; ``memory``
        adds readable regions to its memory."""
        data = bytes(packet)
        check_test_input(self.name, self.kind, data, repeat)
        reports: list[ExceptionReport] = []
        retval, ctx_out = 0, bytes(ctx or b"")
        with self.extension._running_in(process, memory):
            for _ in range(repeat):
                run = self.extension.interpreter.run(self.name, data, ctx, test_run=True)
                retval, data, ctx_out = run.retval, run.packet, run.ctx
                if run.exception is not None:
                    reports.append(self.extension._raised(self.ir, run.exception))
        return RunResult(
            retval=retval,
            packet=data,
            exceptions=tuple(self.extension._deliver(reports)),
            ctx=ctx_out,
        )

    def reenable(self) -> None:
        """Let a crash-stop program run again after an exception disabled it."""
        clear_crash_flag(self.extension.maps, self.name)


class HostExtension(ExtensionParts):
    """A compiled extension whose programs run in :class:`~pykex.ir.interp.Interpreter`.

    ``programs`` and ``maps`` (also attributes) mirror :class:`Extension`'s:
    :class:`HostProgram`\\ s and :class:`~pykex.runtime.hostmaps.HostMapView`\\ s.
    """

    def __init__(
        self,
        compilation: Compilation,
        *,
        cpu: int = 0,
        loop_budget: int = DEFAULT_LOOP_BUDGET,
        seed: int = 0,
        process: HostProcess | None = None,
    ) -> None:
        self.compilation = compilation
        # The backend's site table numbers exceptions as the kernel reports them.
        self.compiled: CompiledModule = compilation.compiled
        module = compilation.optimized_ir
        self.interpreter = Interpreter(
            module, cpu=cpu, cpus=max(_cpu_count(), cpu + 1), loop_budget=loop_budget, seed=seed
        )
        self.process = process if process is not None else HostProcess.current()
        self.programs: dict[str, HostProgram] = {
            program.name: HostProgram(self, program) for program in module.programs
        }
        self.maps: dict[str, HostMapView | HostEventView] = {}
        for decl in module.maps:
            host = self.interpreter.maps[decl.name]
            self.maps[decl.name] = (HostEventView(host, self._drop_counter(decl.name))
                                    if decl.kind in EVENT_KINDS else HostMapView(host))
        self._source = SourceLines(self.compiled.file, self.compiled.source)
        self._site_ids = {_site_key(site): site.id for site in reversed(self.compiled.sites)}
        self._counts: Counter[int] = Counter()
        self._capacity = error_channel_capacity(self.compiled)
        self._lost = 0

    @property
    def process(self) -> HostProcess:
        """The task the programs run in (see :class:`~pykex.ir.interp.HostProcess`)."""
        return self.interpreter.process

    @process.setter
    def process(self, process: HostProcess) -> None:
        self.interpreter.process = process
        self.interpreter.memory = FakeMemory({**task_memory(process), **process.memory})

    @contextmanager
    def _running_in(self, process: HostProcess | None,
                    memory: Mapping[int, bytes] | None) -> Iterator[None]:
        """Runs with another process or more memory, restoring the extension's after."""
        if process is None and not memory:
            yield
            return
        saved = self.process
        chosen = process if process is not None else saved
        self.process = replace(chosen, memory={**chosen.memory, **(memory or {})})
        try:
            yield
        finally:
            self.process = saved

    def _drop_counter(self, ring: str) -> Callable[[], int]:
        """How many records ``ring`` had no room for (the front end counts them
        in the drops global, one field per ring)."""
        def read() -> int:
            drops = self.maps.get(DROPS_MAP)
            return int(getattr(drops[0], ring, 0)) if drops is not None else 0
        return read

    def _raised(self, program: ProgramIR, raised: RaisedException) -> ExceptionReport:
        """The report the kernel would decode for ``raised``: its site, and the
        values as the 64-bit record words carry them."""
        args = tuple(value & MASK64 for value in raised.args)
        # The outermost location names the program that raised: after a tail call,
        # not the one the run started in.
        origin = raised.locs[-1].function if raised.locs else program.name
        site_id = self._site_ids.get((origin, raised.kind, raised.message, tuple(raised.locs)))
        if site_id is None:
            # Not in the table (the backend numbers every Raise, so a pykex bug).
            site = ExceptionSite(-1, program.name, raised.kind, raised.message, raised.locs)
            return replace(report_for_site(site, args, self._source), site=None)
        self._counts[site_id] += 1
        return report_for_site(self.compiled.sites[site_id], args, self._source)

    def _deliver(self, reports: list[ExceptionReport]) -> list[ExceptionReport]:
        """What the error channel lets through: as many as it holds, the rest lost."""
        self._lost += max(0, len(reports) - self._capacity)
        return reports[: self._capacity]

    # -- the same questions as a kernel extension ------------------------------------

    def exceptions(self) -> ExceptionCounts:
        return ExceptionCounts.from_sites(self.compiled, self._counts)

    @property
    def lost_reports(self) -> int:
        return self._lost

    @property
    def trace(self) -> list[str]:
        """Lines the programs printed (``bpf_trace_printk``), oldest first."""
        return self.interpreter.trace

    def close(self) -> None:
        """Nothing to release in host mode; present so code runs unchanged in both modes."""

    def __enter__(self) -> HostExtension:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<HostExtension {self.compiled.file}: programs {', '.join(self.programs)}; "
            f"maps {', '.join(self.maps)}>"
        )


def _site_key(site: ExceptionSite) -> tuple[object, ...]:
    return (site.program, site.kind, site.message, tuple(site.locs))
