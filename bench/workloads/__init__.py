"""The workloads: what each one runs, on which packet, and how its result is checked.

Each workload lives in ``workloads/<name>/``: ``prog.c`` (idiomatic C, libbpf
style), ``prog.py`` (idiomatic pykex, when written) and ``workload.py``,
which defines ``WORKLOAD``: the packet both versions run on (defined once, so
both see the same bytes), the verdict they must return, the map contents they
must leave behind, and extra packets that must get other verdicts. A version
whose check fails is reported as failed and never timed, so a fast wrong
program cannot win.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX = 0, 1, 2, 3

# The order of the report: the floor first, then roughly by cost.
NAMES: tuple[str, ...] = (
    "empty",
    "array_global",
    "percpu_counter",
    "spin_lock",
    "parse_blocklist",
    "lpm_lookup",
    "call_chain",
    "ringbuf_output",
    "checksum",
    "payload_scan",
)


class CheckError(Exception):
    """A version computed something other than what its workload expects."""


class MapAccess(Protocol):
    """What a check sees of a loaded version: its maps by name, as raw bytes."""

    def lookup(self, map_name: str, key: bytes) -> bytes | None: ...

    def update(self, map_name: str, key: bytes, value: bytes) -> None: ...

    def per_cpu(self, map_name: str, key: bytes) -> list[bytes]: ...

    def records(self, map_name: str) -> list[bytes]: ...

    def variable(self, name: str) -> bytes: ...


def _nothing(*_: object) -> None:
    return None


@dataclass(frozen=True)
class Case:
    """Another packet and the verdict it must get (checked once per load, not timed)."""

    label: str
    packet: bytes
    retval: int


@dataclass(frozen=True)
class Workload:
    """One benchmark: ``program`` (the function's name in both versions) run on ``packet``.

    ``prepare`` fills the maps after each load; after ``runs`` runs on
    ``packet``, ``check(maps, runs)`` raises :class:`CheckError` unless the
    maps hold what they should. ``runs_per_call`` caps one test run (a ring
    buffer holds so many records) and ``between_calls`` makes room again.
    """

    name: str
    title: str
    packet: bytes
    retval: int
    prepare: Callable[[MapAccess], None] = _nothing
    check: Callable[[MapAccess, int], None] = _nothing
    cases: tuple[Case, ...] = ()
    runs_per_call: int | None = None
    between_calls: Callable[[MapAccess], None] = _nothing
    program: str = ""
    directory: Path = Path()

    @property
    def function(self) -> str:
        return self.program or self.name

    @property
    def c_source(self) -> Path:
        return self.directory / "prog.c"

    @property
    def pykex_source(self) -> Path:
        return self.directory / "prog.py"


def expect(what: str, got: object, wanted: object) -> None:
    """Raise :class:`CheckError` saying ``what`` was ``got`` instead of ``wanted``."""
    if got != wanted:
        raise CheckError(f"{what} is {got!r}, expected {wanted!r}")


def load_workloads(names: Sequence[str] | None = None) -> list[Workload]:
    """The workloads called ``names`` (all of them by default), in report order."""
    wanted = list(names) if names else list(NAMES)
    unknown = [n for n in wanted if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown workload {', '.join(unknown)} (known: {', '.join(NAMES)})")
    found = []
    for name in sorted(wanted, key=NAMES.index):
        module = importlib.import_module(f"{__name__}.{name}.workload")
        workload: Workload = module.WORKLOAD
        directory = Path(module.__file__ or "").parent
        found.append(replace(workload, directory=directory))
    return found
