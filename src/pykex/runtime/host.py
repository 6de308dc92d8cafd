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
tracepoint programs on their arguments as u64s.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from functools import cached_property
from typing import Any

from pykex.bpf.codegen import CompiledModule, ExceptionSite
from pykex.compiler import Compilation
from pykex.ir.interp import DEFAULT_LOOP_BUDGET, MASK64, Interpreter, RaisedException
from pykex.ir.nodes import ProgramIR
from pykex.kernel.maps import possible_cpus
from pykex.lang.module import GlobalVar

from .base import (
    ExceptionCounts,
    NamedParts,
    RunResult,
    check_test_input,
    error_channel_capacity,
)
from .errors import ExceptionReport, SourceLines, report_for_site
from .extension import Loadable, compilation_of, global_variables, variable_bytes
from .hostmaps import HostMapView


def load_host(
    path: Loadable,
    *,
    source: str | None = None,
    opt_level: int = 1,
    cpu: int = 0,
    loop_budget: int = DEFAULT_LOOP_BUDGET,
    seed: int = 0,
) -> HostExtension:
    """Compile the extension at ``path`` and run it in CPython (see the module docs)."""
    return HostExtension(
        compilation_of(path, source, opt_level), cpu=cpu, loop_budget=loop_budget, seed=seed
    )


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

    def __repr__(self) -> str:
        return f"<HostProgram {self.name} ({self.kind})>"

    def test_run(
        self, packet: bytes = b"", *, repeat: int = 1, ctx: bytes | None = None
    ) -> RunResult:
        """Run the program ``repeat`` times, as BPF_PROG_TEST_RUN would: each run
        sees the packet the one before left; the result is the last run's."""
        data = bytes(packet)
        check_test_input(self.name, self.kind, data, repeat)
        reports: list[ExceptionReport] = []
        retval = 0
        for _ in range(repeat):
            run = self.extension.interpreter.run(self.name, data, ctx)
            retval, data = run.retval, run.packet
            if run.exception is not None:
                reports.append(self.extension._raised(self.ir, run.exception))
        return RunResult(
            retval=retval,
            packet=data,
            exceptions=tuple(self.extension._deliver(reports)),
            ctx=bytes(ctx or b""),
        )


class HostExtension(NamedParts):
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
    ) -> None:
        self.compilation = compilation
        # The backend's site table numbers exceptions as the kernel reports them.
        self.compiled: CompiledModule = compilation.compiled
        module = compilation.optimized_ir
        self.interpreter = Interpreter(
            module, cpu=cpu, cpus=max(_cpu_count(), cpu + 1), loop_budget=loop_budget, seed=seed
        )
        self.programs: dict[str, HostProgram] = {
            program.name: HostProgram(self, program) for program in module.programs
        }
        self.maps: dict[str, HostMapView] = {
            decl.name: HostMapView(self.interpreter.maps[decl.name]) for decl in module.maps
        }
        self._source = SourceLines(self.compiled.file, self.compiled.source)
        self._site_ids = {_site_key(site): site.id for site in reversed(self.compiled.sites)}
        self._counts: Counter[int] = Counter()
        self._capacity = error_channel_capacity(self.compiled)
        self._lost = 0

    def _raised(self, program: ProgramIR, raised: RaisedException) -> ExceptionReport:
        """The report the kernel would decode for ``raised``: its site, and the
        values as the 64-bit record words carry them."""
        args = tuple(value & MASK64 for value in raised.args)
        site_id = self._site_ids.get(
            (program.name, raised.kind, raised.message, tuple(raised.locs))
        )
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

    @cached_property
    def _variables(self) -> dict[str, GlobalVar]:
        return global_variables(self.compilation)

    def variable(self, name: str) -> bytes:
        """The current bytes of module global ``name`` (decode them with its type)."""
        return variable_bytes(self._variables, self.maps, name, self.compiled.file)

    @property
    def sites(self) -> list[ExceptionSite]:
        return list(self.compiled.sites)

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
