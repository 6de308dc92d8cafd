"""Kernel symbols from ``/proc/kallsyms``: addresses to names and back.

The file is read once per :class:`KernelSymbols` (about 120,000 lines, a few
hundred milliseconds); lookups are a binary search over the sorted
addresses. Names come out the way BCC's ``ksym`` writes them::

    ksyms = KernelSymbols()
    ksyms.ksym(addr)                                     # 'do_nanosleep'
    ksyms.ksym(addr, show_offset=True, show_module=True) # 'do_nanosleep+0x5c [kernel]'
    ksyms.ksymaddr("do_nanosleep")                       # 0xffffffff81c3f1e0

Unprivileged readers see every address as 0 (``kernel.kptr_restrict``, or no
CAP_SYSLOG): :attr:`KernelSymbols.restricted` says so, and lookups raise
:class:`KernelSymbolsHiddenError` explaining why instead of naming the wrong
symbol.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cache

KALLSYMS = "/proc/kallsyms"
UNKNOWN = "[unknown]"
CORE_MODULE = "kernel"
"""The module BCC names for symbols of the kernel image itself."""

# Symbol kinds worth naming an address with: code and data. Absolute symbols
# ('a', 'A': per-CPU offsets and the like) are not addresses of anything.
_ADDRESS_KINDS = frozenset("tTwWdDbBrRvV")


@dataclass(frozen=True)
class KernelSymbol:
    """A kallsyms entry; ``module`` is :data:`CORE_MODULE` for the kernel image."""

    name: str
    address: int
    kind: str  # nm-style letter: 'T' global text, 't' local text, 'D' data, ...
    module: str


@dataclass(frozen=True)
class ResolvedAddress:
    symbol: KernelSymbol
    offset: int  # bytes past the symbol's start


class KernelSymbolsHiddenError(PermissionError):
    """kallsyms shows every address as zero to this process."""


class KernelSymbolNotFoundError(LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no kernel symbol named {name!r} in {KALLSYMS}")

    def __str__(self) -> str:  # LookupError would repr() the message otherwise
        return str(self.args[0])


def _hidden_message(path: str) -> str:
    try:
        with open("/proc/sys/kernel/kptr_restrict") as f:
            setting = f"kernel.kptr_restrict = {f.read().strip()}"
    except OSError:
        setting = "kernel.kptr_restrict is unreadable"
    return (
        f"{path} shows every kernel address as 0 to this process ({setting}); "
        "reading kernel symbol addresses needs root (CAP_SYSLOG) and kptr_restrict below 2"
    )


# Rank among aliases at one address, lowest named first: code before data,
# global before local, public names before "_"-prefixed internal ones.
def _preference(kind: str, name: str) -> int:
    return (kind not in "tTwW") * 4 + kind.islower() * 2 + name.startswith("_")


class KernelSymbols:
    """``/proc/kallsyms`` (or a file in its format), parsed once."""

    def __init__(self, path: str = KALLSYMS) -> None:
        self.path = path
        # (address, preference, name, kind, module) tuples: far cheaper to
        # build and sort than 120,000 objects; symbols are made on lookup.
        entries: list[tuple[int, int, str, str, str]] = []
        self._by_name: dict[str, tuple[int, int, str, str, str]] = {}
        self._modules: set[str] = set()
        all_zero = True
        with open(path) as f:
            text = f.read()
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 3:
                continue
            try:
                address = int(fields[0], 16)
            except ValueError:
                continue
            kind, name = fields[1], fields[2]
            module = fields[3][1:-1] if len(fields) > 3 and fields[3][:1] == "[" else CORE_MODULE
            entry = (address, _preference(kind, name), name, kind, module)
            all_zero = all_zero and address == 0
            self._by_name.setdefault(name, entry)
            self._modules.add(module)
            if kind in _ADDRESS_KINDS:
                entries.append(entry)
        self.restricted = bool(self._by_name) and all_zero
        """True when every address reads as 0 (kptr_restrict or missing CAP_SYSLOG)."""
        entries.sort()
        self._entries: list[tuple[int, int, str, str, str]] = []
        for entry in entries:  # one symbol per address: the preferred alias
            if not self._entries or self._entries[-1][0] != entry[0]:
                self._entries.append(entry)
        self._addresses = [entry[0] for entry in self._entries]

    def __len__(self) -> int:
        return len(self._by_name)

    def _check_visible(self) -> None:
        if self.restricted:
            raise KernelSymbolsHiddenError(_hidden_message(self.path))

    def resolve(self, address: int) -> ResolvedAddress | None:
        """The symbol ``address`` falls in, or None below the first symbol.

        An address past a module's last symbol still resolves to it, as
        kallsyms gives no sizes to tell otherwise.
        """
        self._check_visible()
        at = bisect.bisect_right(self._addresses, address) - 1
        if at < 0:
            return None
        symbol = _symbol(self._entries[at])
        return ResolvedAddress(symbol, address - symbol.address)

    def ksym(self, address: int, *, show_offset: bool = False, show_module: bool = False) -> str:
        """``name``, ``name+0xoff`` and/or ``name [module]`` as BCC's ``ksym``;
        ``[unknown]`` when no symbol holds the address."""
        found = self.resolve(address)
        if found is None:
            return UNKNOWN
        text = found.symbol.name
        if show_offset:
            text += f"+{found.offset:#x}"
        if show_module:
            text += f" [{found.symbol.module}]"
        return text

    def ksymaddr(self, name: str, module: str | None = None) -> int:
        """The address of symbol ``name`` (in ``module`` when given)."""
        self._check_visible()
        if module is None:
            entry = self._by_name.get(name)
        else:
            entry = next((e for e in self._entries if e[2] == name and e[4] == module), None)
        if entry is None:
            raise KernelSymbolNotFoundError(name if module is None else f"{module}:{name}")
        return entry[0]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def modules(self) -> set[str]:
        """Every module with symbols, :data:`CORE_MODULE` included."""
        return set(self._modules)


def _symbol(entry: tuple[int, int, str, str, str]) -> KernelSymbol:
    address, _, name, kind, module = entry
    return KernelSymbol(name, address, kind, module)


@cache
def kernel_symbols() -> KernelSymbols:
    """The machine's kernel symbols, read on first use and kept.

    Modules loaded later are missing from it: make a new
    :class:`KernelSymbols` to see them.
    """
    return KernelSymbols()


def ksym(address: int, *, show_offset: bool = False, show_module: bool = False) -> str:
    """:meth:`KernelSymbols.ksym` on this machine's kernel symbols."""
    return kernel_symbols().ksym(address, show_offset=show_offset, show_module=show_module)


def ksymaddr(name: str, module: str | None = None) -> int:
    """:meth:`KernelSymbols.ksymaddr` on this machine's kernel symbols."""
    return kernel_symbols().ksymaddr(name, module)
