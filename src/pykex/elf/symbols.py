"""Symbols of ELF64 executables and shared libraries, and where they sit in the file.

A uprobe names its target as (file, byte offset in that file). Symbols carry
virtual addresses instead, so :func:`symbol_file_offset` maps an address back
through the ``PT_LOAD`` segment that contains it. The same arithmetic holds
for fixed-address executables, position-independent executables and shared
libraries, since their addresses are all relative to the file's own layout.

Only what uprobes need is read: the file header, the section headers,
``.symtab`` and ``.dynsym`` with their string tables, and the program headers.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from .errors import ELFFormatError

_ELF_MAGIC = b"\x7fELF"
_ELFCLASS64 = 2
_ELFDATA2LSB = 1
_ELFDATA2MSB = 2

_SHT_SYMTAB = 2
_SHT_DYNSYM = 11
_SHN_UNDEF = 0
_PT_LOAD = 1


class SymbolType(IntEnum):
    """``STT_*``: what a symbol names."""

    NOTYPE = 0
    OBJECT = 1
    FUNC = 2
    SECTION = 3
    FILE = 4
    COMMON = 5
    TLS = 6
    GNU_IFUNC = 10


class SymbolNotFoundError(LookupError):
    """No defined symbol of that name in the file."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        super().__init__(f"symbol {name!r} not found in {path}")

    def __str__(self) -> str:  # LookupError would repr() the message otherwise
        return str(self.args[0])


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int  # virtual address (or section offset in relocatable objects)
    size: int
    type: SymbolType | int
    binding: int  # STB_LOCAL 0, STB_GLOBAL 1, STB_WEAK 2
    section_index: int


@dataclass(frozen=True)
class _Section:
    type: int
    offset: int
    size: int
    link: int
    entry_size: int


@dataclass(frozen=True)
class Segment:
    """A ``PT_LOAD`` program header: file bytes mapped at ``vaddr``."""

    offset: int
    vaddr: int
    file_size: int
    memory_size: int


class ElfFile:
    """An ELF64 file opened for reading its symbols; use as a context manager."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "rb") as f:
            try:
                self._data: mmap.mmap | bytes = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file cannot be mapped
                self._data = b""
        try:
            self._parse_header()
        except BaseException:
            self.close()
            raise

    def _parse_header(self) -> None:
        data = self._data
        if len(data) < 64 or data[:4] != _ELF_MAGIC:
            raise ELFFormatError(f"{self.path} is not an ELF file")
        if data[4] != _ELFCLASS64:
            raise ELFFormatError(f"{self.path} is a 32-bit ELF file; only ELF64 is supported")
        if data[5] not in (_ELFDATA2LSB, _ELFDATA2MSB):
            raise ELFFormatError(f"{self.path} has an unknown byte order ({data[5]})")
        self._order = "<" if data[5] == _ELFDATA2LSB else ">"
        (
            self.file_type,
            self.machine,
            _version,
            _entry,
            phoff,
            shoff,
            _flags,
            _ehsize,
            phentsize,
            phnum,
            shentsize,
            shnum,
            _shstrndx,
        ) = self._unpack("HHIQQQIHHHHHH", 16)
        self._sections = self._read_sections(shoff, shentsize, shnum)
        self.segments = self._read_segments(phoff, phentsize, phnum)

    def _unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        layout = struct.Struct(self._order + fmt)
        if offset < 0 or offset + layout.size > len(self._data):
            raise ELFFormatError(f"{self.path} is truncated (reading {offset:#x})")
        return layout.unpack_from(self._data, offset)

    def _read_sections(self, shoff: int, entry_size: int, count: int) -> list[_Section]:
        if shoff == 0:
            return []
        if count == 0:  # more than 0xff00 sections: the real count is in section 0
            count = self._unpack("IIQQQQIIQQ", shoff)[5]
        sections = []
        for i in range(count):
            _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize = self._unpack(
                "IIQQQQIIQQ", shoff + i * entry_size
            )
            sections.append(_Section(kind, offset, size, link, entsize))
        return sections

    def _read_segments(self, phoff: int, entry_size: int, count: int) -> list[Segment]:
        segments = []
        for i in range(count):
            kind, _flags, offset, vaddr, _paddr, filesz, memsz, _align = self._unpack(
                "IIQQQQQQ", phoff + i * entry_size
            )
            if kind == _PT_LOAD:
                segments.append(Segment(offset, vaddr, filesz, memsz))
        return segments

    def _string(self, table: _Section, offset: int) -> str:
        start = table.offset + offset
        end = self._data.find(b"\0", start, table.offset + table.size)
        if start >= len(self._data) or end < 0:
            raise ELFFormatError(f"{self.path}: string at {offset} runs off its table")
        return bytes(self._data[start:end]).decode(errors="replace")

    def symbols(self) -> Iterator[Symbol]:
        """Every symbol of ``.symtab``, then of ``.dynsym`` (stripped files have only it)."""
        for kind in (_SHT_SYMTAB, _SHT_DYNSYM):
            for section in self._sections:
                if section.type == kind:
                    yield from self._section_symbols(section)

    def _section_symbols(self, section: _Section) -> Iterator[Symbol]:
        if section.link >= len(self._sections):
            raise ELFFormatError(f"{self.path}: symbol table links to a missing string table")
        names = self._sections[section.link]
        entry_size = section.entry_size or 24
        for at in range(section.offset, section.offset + section.size, entry_size):
            name_offset, info, _other, shndx, value, size = self._unpack("IBBHQQ", at)
            if name_offset == 0:
                continue
            kind = info & 0xF
            yield Symbol(
                name=self._string(names, name_offset),
                value=value,
                size=size,
                type=SymbolType(kind) if kind in SymbolType._value2member_map_ else kind,
                binding=info >> 4,
                section_index=shndx,
            )

    def find(self, name: str) -> Symbol:
        """The symbol ``name`` defined in this file (imports do not count).

        A function wins over another kind of symbol of the same name.
        """
        found = None
        for symbol in self.symbols():
            if symbol.name != name or symbol.section_index == _SHN_UNDEF:
                continue
            if symbol.type in (SymbolType.FUNC, SymbolType.GNU_IFUNC):
                return symbol
            found = found or symbol
        if found is None:
            raise SymbolNotFoundError(name, self.path)
        return found

    def file_offset(self, vaddr: int) -> int:
        """Where the byte loaded at ``vaddr`` lives in the file."""
        for segment in self.segments:
            if segment.vaddr <= vaddr < segment.vaddr + segment.file_size:
                return vaddr - segment.vaddr + segment.offset
        raise ELFFormatError(f"address {vaddr:#x} is in no loadable segment of {self.path}")

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            self._data.close()

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def symbol_file_offset(path: str, name: str) -> int:
    """The file offset of symbol ``name`` in the executable or library at ``path``."""
    with ElfFile(path) as elf:
        return elf.file_offset(elf.find(name).value)
