"""What kernel and host extensions share: run results, exception counts, lookup by name."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pykex.bpf.codegen import ERROR_RECORD, ERRORS_MAP, CompiledModule, ExceptionSite
from pykex.lang.diagnostics import Reporter
from pykex.lang.module import GlobalVar, Module, analyse
from pykex.lang.resources import DISABLED_MAP

from .errors import ExceptionReport, raise_for

if TYPE_CHECKING:
    from pykex.compiler import Compilation

# Records the error channel holds before it loses reports: each takes an
# 8-byte header plus the record, rounded up to 8 bytes.
_RECORD_SPACE = (ERROR_RECORD.size + 8 + 7) & ~7


def error_channel_capacity(compiled: CompiledModule) -> int:
    """How many undrained reports the module's error channel holds."""
    return compiled.map(ERRORS_MAP).max_entries // _RECORD_SPACE


def clear_crash_flag(maps: Mapping[str, Any], program: str) -> None:
    """Clear ``program``'s field of the ``.data.disabled`` global (see the crash
    stop section of docs/language.md), so that it runs again."""
    flags = maps.get(DISABLED_MAP)
    value = flags[0] if flags is not None else None
    if value is None or program not in [f.name for f in type(value).fields]:
        raise TypeError(f"program {program!r} is not declared crash_stop=True, so it is "
                        "never disabled")
    setattr(value, program, 0)
    flags[0] = value


# Kinds whose test runs take a packet: the kernel wants at least an Ethernet header.
PACKET_KINDS = frozenset({"xdp", "tc", "socket_filter", "cgroup_skb"})
ETH_HLEN = 14


def check_test_input(program: str, kind: str, packet: bytes, repeat: int) -> None:
    """Refuse, with the reason, test runs the kernel refuses with a bare EINVAL."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    if kind in PACKET_KINDS and len(packet) < ETH_HLEN:
        raise ValueError(
            f"test runs of {kind} program {program!r} need a packet of at least "
            f"{ETH_HLEN} bytes (an Ethernet header), got {len(packet)}"
        )


@dataclass(frozen=True)
class RunResult:
    """One test run: the verdict, the packet as the program left it and what it raised.

    ``exceptions`` lists every report the run produced (several when it was
    repeated); ``exception`` is the first, or None. ``duration_ns`` is the
    kernel's mean time per run (None in host mode); ``ctx`` the context after
    the run.
    """

    retval: int
    packet: bytes
    exceptions: tuple[ExceptionReport, ...] = ()
    duration_ns: int | None = None
    ctx: bytes = b""

    @property
    def exception(self) -> ExceptionReport | None:
        return self.exceptions[0] if self.exceptions else None

    def check(self) -> RunResult:
        """Raise the run's exception as a Python exception (see
        :func:`~pykex.runtime.errors.raise_for`); return self when it raised none."""
        if self.exception is not None:
            raise_for(self.exception)
        return self


@dataclass(frozen=True)
class ExceptionCounts:
    """How often each exception site raised, and each program in total.

    ``by_site`` holds the sites that raised at least once (site id -> count);
    ``by_program`` every program of the module (0 when it never raised).
    ``sites`` is the module's site table, for :meth:`site`.
    """

    by_site: dict[int, int]
    by_program: dict[str, int]
    sites: tuple[ExceptionSite, ...] = field(repr=False, default=())

    @classmethod
    def from_sites(cls, compiled: CompiledModule, counts: Mapping[int, int]) -> ExceptionCounts:
        by_program = {program.name: 0 for program in compiled.programs}
        by_site = {}
        for site in compiled.sites:
            count = counts.get(site.id, 0)
            if count:
                by_site[site.id] = count
                by_program[site.program] += count
        return cls(by_site, by_program, tuple(compiled.sites))

    @property
    def total(self) -> int:
        return sum(self.by_program.values())

    def site(self, site_id: int) -> ExceptionSite:
        return self.sites[site_id]

    def __getitem__(self, program: str) -> int:
        return self.by_program[program]

    def __str__(self) -> str:
        lines = []
        for site_id, count in self.by_site.items():
            site = self.sites[site_id]
            where = f"{site.locs[0].file}:{site.locs[0].line}" if site.locs else "?"
            lines.append(f"{site.program}: {site.kind} at {where}: {count}")
        return "\n".join(lines) if lines else "no exceptions"


class NamedParts:
    """Programs and maps reachable as attributes: ``ext.firewall``, ``ext.stats``.

    Names the class itself defines (``close``, ``maps``...) win; use
    ``ext.programs[name]`` / ``ext.maps[name]`` for those.
    """

    programs: dict[str, Any]
    maps: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        parts = self.__dict__
        if name in parts.get("programs", {}):
            return parts["programs"][name]
        if name in parts.get("maps", {}):
            return parts["maps"][name]
        raise AttributeError(
            f"{type(self).__name__} has no program or map {name!r} "
            f"(programs: {', '.join(parts.get('programs', {})) or 'none'}; "
            f"maps: {', '.join(parts.get('maps', {})) or 'none'})"
        )

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self.programs, *self.maps})


class ExtensionParts(NamedParts):
    """What a kernel and a host extension answer alike from their compilation."""

    compilation: Compilation
    compiled: CompiledModule

    @cached_property
    def _variables(self) -> dict[str, GlobalVar]:
        return global_variables(self.compilation)

    def variable(self, name: str) -> bytes:
        """The current bytes of module global ``name`` (decode them with its type)."""
        return variable_bytes(self._variables, self.maps, name, self.compiled.file)

    @property
    def sites(self) -> list[ExceptionSite]:
        """The module's exception sites (:class:`~pykex.bpf.codegen.ExceptionSite`)."""
        return list(self.compiled.sites)


def global_variables(compilation: Compilation) -> dict[str, GlobalVar]:
    """The module's globals (name -> section and offset) as the front end lays
    them out; none when the source does not parse (IR built elsewhere)."""
    try:
        tree = ast.parse(compilation.source, compilation.path)
    except SyntaxError:
        return {}
    # Globals depend on imports, constants and Structs only; leaving the
    # functions out spares reading tracepoint formats again.
    tree.body = [node for node in tree.body if not isinstance(node, ast.FunctionDef)]
    module = Module(compilation.path, compilation.source, tree,
                    Reporter(compilation.path, compilation.source))
    analyse(module, None)
    return module.globals


def variable_bytes(
    variables: dict[str, GlobalVar], maps: dict[str, Any], name: str, file: str
) -> bytes:
    """The bytes global ``name`` holds now, read from its section's map in ``maps``."""
    try:
        var = variables[name]
    except KeyError:
        known = ", ".join(sorted(variables)) or "none"
        raise KeyError(f"{file} has no global variable {name!r} (its globals: {known})") from None
    value = bytes(maps[var.section][0])
    return value[var.offset : var.offset + len(var.initial)]
