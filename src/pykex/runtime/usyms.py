"""User-space symbols: which function of which file an address of a process is in.

An address is mapped through ``/proc/PID/maps`` to (file, offset in the
file), the offset through the file's ``PT_LOAD`` segments to the address the
ELF symbol table speaks in, and that to the function containing it. The same
arithmetic serves fixed-address executables, position-independent
executables and shared libraries, wherever they were loaded. Names come out
the way BCC's ``sym`` writes them::

    syms = ProcessSymbols(pid)
    syms.sym(addr)                                      # 'malloc'
    syms.sym(addr, show_offset=True, show_module=True)  # 'malloc+0x1e [libc.so.6]'
    sym(addr, pid)                                      # the same, with a per-pid cache

Files are opened through ``/proc/PID/root`` (so processes in containers
resolve) and, once deleted or replaced, through ``/proc/PID/map_files``.
Symbol tables are read once per file version (device, inode, mtime) and
shared by every process mapping it. JIT-compiled code in anonymous memory is
named from ``/tmp/perf-PID.map`` when the runtime writes one (perf's
convention). An address no symbol covers is ``[unknown]``.
"""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict
from dataclasses import dataclass

from pykex.elf.errors import ELFFormatError
from pykex.elf.symbols import ElfFile, SymbolType

UNKNOWN = "[unknown]"

_FUNCTION_TYPES = (SymbolType.FUNC, SymbolType.GNU_IFUNC)
_STB_LOCAL, _STB_GLOBAL, _STB_WEAK = 0, 1, 2
_CACHED_TABLES = 256  # symbol tables kept across processes
_CACHED_PROCESSES = 64  # processes :func:`sym` keeps mappings for


@dataclass(frozen=True)
class MemoryMapping:
    """One line of ``/proc/PID/maps``."""

    start: int
    end: int
    perms: str
    offset: int  # file offset mapped at ``start``
    device: str
    inode: int
    path: str  # "" for anonymous memory; "[heap]", "[vdso]"... for special ones

    @property
    def is_file(self) -> bool:
        return self.inode != 0 and self.path.startswith("/")

    @property
    def deleted(self) -> bool:
        return self.path.endswith(" (deleted)")


def read_mappings(pid: int) -> list[MemoryMapping]:
    """The memory mappings of process ``pid``, in address order."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ProcessLookupError(f"no process with pid {pid}") from None
    except PermissionError:
        raise PermissionError(
            f"cannot read /proc/{pid}/maps: the process belongs to another user "
            "(resolving its symbols needs root or ptrace access)"
        ) from None
    mappings = []
    for line in lines:
        # "55d0c8a00000-55d0c8a02000 r-xp 00002000 fe:01 1234   /usr/bin/sleep"
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        path = fields[5] if len(fields) > 5 else ""
        mappings.append(MemoryMapping(start, end, fields[1], int(fields[2], 16), fields[3],
                                      int(fields[4]), path))
    return mappings


@dataclass(frozen=True)
class UserSymbol:
    """Where an address of a process points.

    ``name`` is None when the address is in a mapping but no symbol covers it.
    """

    name: str | None
    offset: int  # bytes past the symbol's start (0 without a symbol)
    module: str  # the mapped file's path, or the perf map's for JIT code
    file_offset: int | None  # None for memory no file backs

    def format(self, *, show_offset: bool = False, show_module: bool = False) -> str:
        """``name``, ``name+0xoff`` and/or ``name [file]`` as BCC's ``sym``."""
        text = self.name or UNKNOWN
        if show_offset and self.name is not None:
            text += f"+{self.offset:#x}"
        if show_module:
            text += f" [{os.path.basename(self.module)}]"
        return text


class ElfSymbolTable:
    """The functions of one ELF file, sorted by address, with its segments."""

    def __init__(self, path: str) -> None:
        self.path = path
        best: dict[int, tuple[tuple[int, bool, bool], str, int]] = {}
        with ElfFile(path) as elf:
            self.segments = list(elf.segments)
            for symbol in elf.symbols():
                if symbol.type not in _FUNCTION_TYPES or not symbol.section_index:
                    continue
                if not symbol.value:
                    continue
                rank = _rank(symbol.binding, symbol.name, symbol.size)
                kept = best.get(symbol.value)
                if kept is None or rank < kept[0]:
                    best[symbol.value] = (rank, symbol.name, symbol.size)
        self._starts = sorted(best)
        self._names = [best[start][1] for start in self._starts]
        self._sizes = [best[start][2] for start in self._starts]

    def __len__(self) -> int:
        return len(self._starts)

    def vaddr(self, file_offset: int) -> int | None:
        """The address the symbols use for the byte at ``file_offset``."""
        for segment in self.segments:
            if segment.offset <= file_offset < segment.offset + segment.file_size:
                return file_offset - segment.offset + segment.vaddr
        return None

    def lookup(self, vaddr: int) -> tuple[str, int] | None:
        """(function name, offset into it) for ``vaddr``, or None.

        A sized symbol covers its size; one of size 0 (hand-written assembly)
        runs to the next symbol.
        """
        at = bisect.bisect_right(self._starts, vaddr) - 1
        if at < 0:
            return None
        start, size = self._starts[at], self._sizes[at]
        limit = start + size if size else (
            self._starts[at + 1] if at + 1 < len(self._starts) else vaddr + 1
        )
        if vaddr >= limit:
            return None
        return self._names[at], vaddr - start

    @classmethod
    def for_file(cls, path: str) -> ElfSymbolTable | None:
        """The table of ``path``, read once per file version; None if not ELF."""
        info = os.stat(path)
        key = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
        if key in _tables:
            _tables.move_to_end(key)
            return _tables[key]
        try:
            table: ElfSymbolTable | None = cls(path)
        except ELFFormatError:
            table = None
        _tables[key] = table
        if len(_tables) > _CACHED_TABLES:
            _tables.popitem(last=False)
        return table


_tables: OrderedDict[tuple[int, int, int, int], ElfSymbolTable | None] = OrderedDict()


def _rank(binding: int, name: str, size: int) -> tuple[int, bool, bool]:
    """Among aliases at one address, lowest names it: global, then weak, then
    local; public names before ``_``-prefixed ones; sized before unsized."""
    order = {_STB_GLOBAL: 0, _STB_WEAK: 1}.get(binding, 2)
    return order, name.startswith("_"), size == 0


@dataclass(frozen=True)
class _PerfMap:
    starts: list[int]
    ends: list[int]
    names: list[str]


def _read_perf_map(path: str) -> _PerfMap | None:
    # Lines "START SIZE name" in hex, written by JITs (perf's /tmp/perf-PID.map).
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    entries = []
    for line in lines:
        fields = line.split(maxsplit=2)
        try:
            start, size = int(fields[0], 16), int(fields[1], 16)
        except (ValueError, IndexError):
            continue
        entries.append((start, start + size, fields[2] if len(fields) > 2 else UNKNOWN))
    entries.sort()
    return _PerfMap([e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries])


class ProcessSymbols:
    """Symbols of one process. Its mappings are read at creation and again
    when an address falls outside all of them (a library loaded since)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.mappings: list[MemoryMapping] = []
        self._starts: list[int] = []
        self._perf_map: tuple[int, _PerfMap | None] | None = None
        self.refresh()

    def refresh(self) -> None:
        """Read ``/proc/PID/maps`` again."""
        self.mappings = read_mappings(self.pid)
        self._starts = [m.start for m in self.mappings]

    def mapping(self, address: int) -> MemoryMapping | None:
        """The mapping holding ``address``, re-reading the maps once on a miss."""
        found = self._find(address)
        if found is None:
            try:
                self.refresh()
            except ProcessLookupError:  # exited: what was read while it ran stands
                return None
            found = self._find(address)
        return found

    def _find(self, address: int) -> MemoryMapping | None:
        at = bisect.bisect_right(self._starts, address) - 1
        if at >= 0 and address < self.mappings[at].end:
            return self.mappings[at]
        return None

    def resolve(self, address: int) -> UserSymbol | None:
        """Where ``address`` points, or None when no mapping holds it."""
        mapping = self.mapping(address)
        if mapping is None:
            return None
        if not mapping.is_file:
            return self._resolve_jit(address, mapping)
        file_offset = address - mapping.start + mapping.offset
        path = mapping.path.removesuffix(" (deleted)")
        table = self._table(mapping)
        found = None
        if table is not None and (vaddr := table.vaddr(file_offset)) is not None:
            found = table.lookup(vaddr)
        if found is None:
            return UserSymbol(None, 0, path, file_offset)
        return UserSymbol(found[0], found[1], path, file_offset)

    def _table(self, mapping: MemoryMapping) -> ElfSymbolTable | None:
        path = mapping.path.removesuffix(" (deleted)")
        candidates = [f"/proc/{self.pid}/map_files/{mapping.start:x}-{mapping.end:x}"]
        if not mapping.deleted:  # the file seen from the process's own root first
            candidates.insert(0, f"/proc/{self.pid}/root{path}")
        for candidate in candidates:
            try:
                info = os.stat(candidate)
            except OSError:
                continue
            if info.st_ino == mapping.inode:  # still the file that was mapped
                return ElfSymbolTable.for_file(candidate)
        return None

    def _resolve_jit(self, address: int, mapping: MemoryMapping) -> UserSymbol:
        path = f"/tmp/perf-{self.pid}.map"
        perf_map = self._perf_map_at(path)
        if perf_map is not None:
            at = bisect.bisect_right(perf_map.starts, address) - 1
            if at >= 0 and address < perf_map.ends[at]:
                return UserSymbol(perf_map.names[at], address - perf_map.starts[at], path, None)
        return UserSymbol(None, 0, mapping.path or "[anon]", None)

    def _perf_map_at(self, path: str) -> _PerfMap | None:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return None
        if self._perf_map is None or self._perf_map[0] != mtime:
            self._perf_map = (mtime, _read_perf_map(path))
        return self._perf_map[1]

    def sym(self, address: int, *, show_offset: bool = False, show_module: bool = False) -> str:
        """BCC's ``sym``: the function name, ``[unknown]`` when none covers it."""
        found = self.resolve(address)
        if found is None:
            return UNKNOWN
        return found.format(show_offset=show_offset, show_module=show_module)


_processes: OrderedDict[tuple[int, int], ProcessSymbols] = OrderedDict()


def _start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), telling a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name may hold spaces


def process_symbols(pid: int) -> ProcessSymbols:
    """A kept :class:`ProcessSymbols` for ``pid`` (for the 64 most recent processes).

    A process that has exited keeps the mappings read while it ran; a new
    process reusing its pid gets its own.
    """
    started = _start_time(pid)
    if started is None:  # gone: the last process seen with this pid, if any
        for (known_pid, _), symbols in reversed(_processes.items()):
            if known_pid == pid:
                return symbols
        raise ProcessLookupError(f"no process with pid {pid}")
    key = (pid, started)
    if key in _processes:
        _processes.move_to_end(key)
        return _processes[key]
    symbols = _processes[key] = ProcessSymbols(pid)
    if len(_processes) > _CACHED_PROCESSES:
        _processes.popitem(last=False)
    return symbols


def sym(address: int, pid: int, *, show_offset: bool = False, show_module: bool = False) -> str:
    """The function of process ``pid`` at ``address``, as BCC's ``BPF.sym``;
    ``[unknown]`` also for a process that exited before it was ever seen."""
    try:
        symbols = process_symbols(pid)
    except ProcessLookupError:
        return UNKNOWN
    return symbols.sym(address, show_offset=show_offset, show_module=show_module)
