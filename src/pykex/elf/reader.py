"""Reading BPF ELF objects (pykex's own, or clang's libbpf-style C) into an ObjectSpec.

Like libbpf, the reader

* splits executable sections into functions by their FUNC symbols: functions
  in ``.text`` are subprograms, the others programs whose type comes from
  the section name;
* reads BTF-defined maps from ``.maps`` (the anonymous struct of each map
  variable: ``type``, ``key``/``key_size``, ``value``/``value_size``,
  ``max_entries``, ``map_flags``) and one array map per global-data section;
* fixes the BTF DATASECs clang leaves unfinished (section size 0, variable
  offsets) from the section headers and the symbol table;
* turns ``R_BPF_64_64``/``R_BPF_64_32`` relocations into
  :class:`~pykex.elf.spec.Relocation` records: map, map value + offset,
  bpf-to-bpf call or function address, kernel function;
* attaches ``.BTF.ext`` func and line info to the functions they describe.

Anything it cannot make sense of raises :class:`ELFFormatError` saying what
and where.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pykex.btf import (
    Array,
    Composite,
    Datasec,
    ExtInfo,
    FuncInfo,
    Kind,
    LineInfo,
    Pointer,
    Spec,
    Var,
    decode_ext,
)
from pykex.btf.errors import BTFError
from pykex.btf.types import Reference, Type, TypeTag

from .btfmerge import record_positions
from .errors import ELFFormatError, ObjectSpecError
from .spec import (
    INSN_SIZE,
    LICENSE_SECTION,
    MAPS_SECTION,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    RelocationKind,
    Variable,
    is_data_section,
)
from .writer import (
    ELF_HEADER,
    EM_BPF,
    R_BPF_64_32,
    R_BPF_64_64,
    REL,
    SECTION_HEADER,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHT_NOBITS,
    SHT_PROGBITS,
    SHT_REL,
    SHT_SYMTAB,
    STT_FUNC,
    STT_OBJECT,
    SYMBOL,
)

_SHT_RELA = 4
_SHN_LORESERVE = 0xFF00
_LD_IMM64 = 0x18
_CALL = 0x85
_PSEUDO_CALL = 1
_INSN = struct.Struct("<BBhi")

#: Integer attributes of a BTF-defined map (``int (*name)[value]``).
_NUMERIC_ATTRIBUTES = ("type", "key_size", "value_size", "max_entries", "map_flags")
#: Attributes libbpf knows that change nothing pykex creates.
_IGNORED_ATTRIBUTES = ("pinning", "numa_node")


@dataclass(frozen=True, slots=True)
class _Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    data: bytes


@dataclass(frozen=True, slots=True)
class _Symbol:
    index: int
    name: str
    kind: int
    binding: int
    shndx: int
    value: int
    size: int


def read_object(data: bytes) -> ObjectSpec:
    """Parse a BPF ELF object; :class:`ELFFormatError` explains anything malformed."""
    try:
        return _Reader(bytes(data)).read()
    except (BTFError, ObjectSpecError) as error:
        raise ELFFormatError(str(error)) from None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sections = self._read_sections()
        self.by_name = {s.name: s for s in self.sections}
        self.symbols = self._read_symbols()

    # -- ELF structure -----------------------------------------------------------------------

    def _read_sections(self) -> list[_Section]:
        data = self.data
        if len(data) < ELF_HEADER.size or data[:4] != b"\x7fELF":
            raise ELFFormatError("not an ELF file (bad magic or too short)")
        if data[4] != 2:
            raise ELFFormatError("not a 64-bit ELF object (BPF objects are ELF64)")
        if data[5] != 1:
            raise ELFFormatError("big-endian objects are not supported")
        header = ELF_HEADER.unpack_from(data, 0)
        machine, shoff, shentsize, shnum, shstrndx = (
            header[2],
            header[6],
            header[11],
            header[12],
            header[13],
        )
        if machine != EM_BPF:
            raise ELFFormatError(f"e_machine is {machine}, not EM_BPF ({EM_BPF})")
        if shentsize != SECTION_HEADER.size:
            raise ELFFormatError(f"section header size {shentsize}, expected 64")
        if shnum == 0 or shoff + shnum * shentsize > len(data):
            raise ELFFormatError("section header table lies outside the file")
        raw = [SECTION_HEADER.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
        if shstrndx >= shnum:
            raise ELFFormatError(f"section name table index {shstrndx} out of range")
        contents = [self._contents(i, h) for i, h in enumerate(raw)]
        names = contents[shstrndx]
        sections = []
        for index, h in enumerate(raw):
            name = _string(names, h[0], f"name of section {index}")
            sections.append(
                _Section(index, name, h[1], h[2], h[4], h[5], h[6], h[7], contents[index])
            )
        return sections

    def _contents(self, index: int, h: tuple[int, ...]) -> bytes:
        kind, offset, size = h[1], h[4], h[5]
        if kind == SHT_NOBITS or index == 0:
            return b""
        if offset + size > len(self.data):
            raise ELFFormatError(f"section {index} runs past the end of the file")
        return self.data[offset : offset + size]

    def _section(self, index: int, what: str) -> _Section:
        if not 0 < index < len(self.sections):
            raise ELFFormatError(f"{what}: section index {index} out of range")
        return self.sections[index]

    def _read_symbols(self) -> list[_Symbol]:
        tables = [s for s in self.sections if s.type == SHT_SYMTAB]
        if len(tables) != 1:
            raise ELFFormatError(f"expected one symbol table, found {len(tables)}")
        table = tables[0]
        strings = self._section(table.link, "symbol string table").data
        if len(table.data) % SYMBOL.size:
            raise ELFFormatError("symbol table size is not a multiple of 24")
        symbols = []
        for index in range(len(table.data) // SYMBOL.size):
            name_off, info, _, shndx, value, size = SYMBOL.unpack_from(
                table.data, index * SYMBOL.size
            )
            name = _string(strings, name_off, f"name of symbol {index}")
            symbol = _Symbol(index, name, info & 0xF, info >> 4, shndx, value, size)
            if symbol.kind in (STT_OBJECT, STT_FUNC) and 0 < shndx < _SHN_LORESERVE:
                section = self._section(shndx, f"symbol {name!r}")
                if value + size > section.size:
                    raise ELFFormatError(f"symbol {name!r} extends past section {section.name!r}")
            symbols.append(symbol)
        return symbols

    # -- the object --------------------------------------------------------------------------

    def read(self) -> ObjectSpec:
        if "maps" in self.by_name:
            raise ELFFormatError(
                "legacy 'maps' section (struct bpf_map_def) is not supported; use BTF-defined"
                " maps in .maps"
            )
        btf_section = self.by_name.get(".BTF")
        btf_raw = self._fixed_btf(btf_section.data) if btf_section else None
        btf = Spec.parse(btf_raw) if btf_raw is not None else None
        ext = ExtInfo()
        ext_section = self.by_name.get(".BTF.ext")
        if ext_section is not None and btf is not None:
            ext = decode_ext(ext_section.data, btf)
        maps = self._maps(btf) + self._data_maps(btf)
        functions = self._functions(maps, ext)
        license_section = self.by_name.get(LICENSE_SECTION)
        license_text = ""
        if license_section is not None:
            license_text = license_section.data.split(b"\0", 1)[0].decode(errors="replace")
        return ObjectSpec(
            programs=[f for f in functions if not f.is_subprogram],
            subprograms=[f for f in functions if f.is_subprogram],
            maps=maps,
            license=license_text,
            btf=btf_raw,
        )

    # -- BTF ---------------------------------------------------------------------------------

    def _fixed_btf(self, raw: bytes) -> bytes:
        """``raw`` with DATASEC sizes and variable offsets taken from the ELF, as libbpf does."""
        spec = Spec.parse(raw)
        if spec.byteorder != "little":
            raise ELFFormatError(".BTF is big-endian in a little-endian object")
        patched = bytearray(raw)
        for type_id, kind, position in record_positions(raw):
            if kind != Kind.DATASEC:
                continue
            datasec = spec.type_by_id(type_id)
            assert isinstance(datasec, Datasec)
            section = self.by_name.get(datasec.name)
            if section is None:
                continue  # externs (.ksyms, .kconfig) have no section
            if section.size >= 1 << 32:
                raise ELFFormatError(f"section {section.name!r} is too large for BTF")
            struct.pack_into("<I", patched, position + 8, section.size)
            offsets = {
                s.name: s.value
                for s in self.symbols
                if s.shndx == section.index and s.kind == STT_OBJECT
            }
            for i, info in enumerate(datasec.vars):
                var = spec.type_by_id(info.type)
                if var.name in offsets:
                    struct.pack_into("<I", patched, position + 16 + 12 * i, offsets[var.name])
        return bytes(patched)

    # -- maps --------------------------------------------------------------------------------

    def _maps(self, btf: Spec | None) -> list[MapSpec]:
        section = self.by_name.get(MAPS_SECTION)
        if section is None:
            return []
        if btf is None:
            raise ELFFormatError(".maps needs .BTF to describe its maps")
        variables = _datasec_variables(btf, MAPS_SECTION)
        maps = []
        for symbol in sorted(self._objects_in(section), key=lambda s: s.value):
            var = variables.get(symbol.name)
            if var is None:
                raise ELFFormatError(f"map {symbol.name!r} has no VAR in the .maps DATASEC")
            maps.append(_map_from_btf(btf, symbol.name, var.type))
        return maps

    def _data_maps(self, btf: Spec | None) -> list[MapSpec]:
        maps = []
        for section in self.sections:
            if not (is_data_section(section.name) and section.flags & SHF_ALLOC):
                continue
            if section.type not in (SHT_PROGBITS, SHT_NOBITS) or section.size == 0:
                continue
            types = _datasec_variables(btf, section.name) if btf is not None else {}
            variables = sorted(
                (
                    Variable(
                        s.name,
                        s.value,
                        s.size,
                        types[s.name].type if s.name in types else 0,
                    )
                    for s in self._objects_in(section)
                ),
                key=lambda v: (v.offset, v.name),
            )
            contents = section.data if section.type == SHT_PROGBITS else bytes(section.size)
            maps.append(MapSpec.global_data(section.name, contents, variables))
        return maps

    def _objects_in(self, section: _Section) -> Iterator[_Symbol]:
        for symbol in self.symbols:
            if symbol.shndx == section.index and symbol.kind == STT_OBJECT and symbol.name:
                yield symbol

    # -- functions ---------------------------------------------------------------------------

    def _functions(self, maps: list[MapSpec], ext: ExtInfo) -> list[ProgramSpec]:
        map_at = {}
        maps_section = self.by_name.get(MAPS_SECTION)
        if maps_section is not None:
            for symbol in self._objects_in(maps_section):
                map_at[symbol.value] = symbol.name
        relocations = {
            s.info: s for s in self.sections if s.type == SHT_REL
        }
        if any(s.type == _SHT_RELA for s in self.sections):
            raise ELFFormatError("RELA relocation sections are not used by BPF objects")
        # (section index, byte offset) -> function name, for call targets.
        starts: dict[tuple[int, int], str] = {}
        layout: list[tuple[_Section, list[_Symbol]]] = []
        for section in self.sections:
            if section.type != SHT_PROGBITS or not section.flags & SHF_EXECINSTR:
                continue
            if section.size == 0:
                continue
            symbols = sorted(
                (s for s in self.symbols if s.shndx == section.index and s.kind == STT_FUNC),
                key=lambda s: s.value,
            )
            if not symbols:
                raise ELFFormatError(f"executable section {section.name!r} has no function symbols")
            for symbol in symbols:
                if symbol.value % INSN_SIZE or symbol.value >= section.size:
                    raise ELFFormatError(f"function {symbol.name!r} starts at a bad offset")
                starts[(section.index, symbol.value)] = symbol.name
            layout.append((section, symbols))

        functions = []
        for section, symbols in layout:
            bounds = [s.value for s in symbols[1:]] + [section.size]
            pending: dict[str, list[Relocation]] = {s.name: [] for s in symbols}
            rel = relocations.get(section.index)
            if rel is not None:
                for offset, symbol, kind in self._relocations(rel):
                    owner = _owner(symbols, bounds, offset)
                    if owner is None or offset % INSN_SIZE:
                        raise ELFFormatError(
                            f"relocation at {section.name}+{offset:#x} is not on an instruction"
                        )
                    insn = (offset - owner.value) // INSN_SIZE
                    pending[owner.name].append(
                        self._relocation(section, offset, insn, symbol, kind, map_at, starts)
                    )
            for symbol, end in zip(symbols, bounds, strict=True):
                size = symbol.size or end - symbol.value
                if symbol.value + size > end or size % INSN_SIZE or size == 0:
                    raise ELFFormatError(f"function {symbol.name!r} has a bad size {size}")
                code = section.data[symbol.value : symbol.value + size]
                relocs = pending[symbol.name]
                relocs += _unrelocated_calls(section, symbol, code, relocs, starts)
                first, count = symbol.value // INSN_SIZE, size // INSN_SIZE
                func_info = [
                    FuncInfo(r.insn - first, r.type_id)
                    for r in ext.func_info.get(section.name, [])
                    if first <= r.insn < first + count
                ]
                line_info = [
                    LineInfo(r.insn - first, r.file_name, r.line_text, r.line, r.column)
                    for r in ext.line_info.get(section.name, [])
                    if first <= r.insn < first + count
                ]
                functions.append(
                    ProgramSpec(
                        symbol.name,
                        section.name,
                        code,
                        sorted(relocs, key=lambda r: r.insn),
                        func_info,
                        line_info,
                    )
                )
        return functions

    def _relocations(self, rel: _Section) -> Iterator[tuple[int, _Symbol, int]]:
        if len(rel.data) % REL.size:
            raise ELFFormatError(f"{rel.name}: size is not a multiple of 16")
        for at in range(0, len(rel.data), REL.size):
            offset, info = REL.unpack_from(rel.data, at)
            index, kind = info >> 32, info & 0xFFFFFFFF
            if not 0 < index < len(self.symbols):
                raise ELFFormatError(f"{rel.name}: symbol index {index} out of range")
            yield offset, self.symbols[index], kind

    def _relocation(
        self,
        section: _Section,
        offset: int,
        insn: int,
        symbol: _Symbol,
        kind: int,
        map_at: dict[int, str],
        starts: dict[tuple[int, int], str],
    ) -> Relocation:
        where = f"relocation at {section.name}+{offset:#x} against {symbol.name or 'a section'}"
        if offset + INSN_SIZE > section.size:
            raise ELFFormatError(f"{where} lies outside the section")
        opcode, regs, _, imm = _INSN.unpack_from(section.data, offset)
        wide = opcode == _LD_IMM64 and offset + 2 * INSN_SIZE <= section.size
        if kind not in (R_BPF_64_64, R_BPF_64_32):
            raise ELFFormatError(f"{where}: unsupported relocation type {kind}")
        if symbol.shndx == 0:
            if opcode != _CALL:
                raise ELFFormatError(f"{where}: extern variables (ksyms) are not supported")
            return Relocation(insn, RelocationKind.KFUNC, symbol.name)
        if symbol.shndx >= _SHN_LORESERVE:
            raise ELFFormatError(f"{where}: symbol in a reserved section")
        target = self._section(symbol.shndx, where)
        if target.name == MAPS_SECTION:
            if not wide or symbol.value not in map_at:
                raise ELFFormatError(f"{where} does not load a map")
            return Relocation(insn, RelocationKind.MAP, map_at[symbol.value])
        if is_data_section(target.name):
            if not wide:
                raise ELFFormatError(f"{where} does not load a global variable")
            value_offset = symbol.value + imm
            if not 0 <= value_offset < max(target.size, 1) or target.size == 0:
                raise ELFFormatError(f"{where}: offset {value_offset} is outside {target.name}")
            return Relocation(insn, RelocationKind.MAP_VALUE, target.name, value_offset)
        if target.flags & SHF_EXECINSTR:
            if opcode == _CALL and regs >> 4 == _PSEUDO_CALL:
                destination = symbol.value + (imm + 1) * INSN_SIZE
            elif wide:
                destination = symbol.value + imm
            else:
                raise ELFFormatError(f"{where} is neither a call nor a function address")
            callee = starts.get((target.index, destination))
            if callee is None:
                raise ELFFormatError(f"{where} leads to {target.name}+{destination:#x},"
                                     " which starts no function")
            return Relocation(insn, RelocationKind.CALL, callee)
        raise ELFFormatError(f"{where}: cannot relocate against section {target.name!r}")


def _owner(symbols: list[_Symbol], bounds: list[int], offset: int) -> _Symbol | None:
    for symbol, end in zip(symbols, bounds, strict=True):
        if symbol.value <= offset < end:
            return symbol
    return None


def _unrelocated_calls(
    section: _Section,
    symbol: _Symbol,
    code: bytes,
    relocations: list[Relocation],
    starts: dict[tuple[int, int], str],
) -> list[Relocation]:
    """Calls the compiler resolved itself (same section, no relocation entry)."""
    relocated = {r.insn for r in relocations}
    found = []
    index = 0
    while index < len(code) // INSN_SIZE:
        opcode, regs, _, imm = _INSN.unpack_from(code, index * INSN_SIZE)
        if opcode == _CALL and regs >> 4 == _PSEUDO_CALL and index not in relocated:
            destination = symbol.value + (index + 1 + imm) * INSN_SIZE
            callee = starts.get((section.index, destination))
            if callee is None:
                raise ELFFormatError(
                    f"call at {section.name}+{symbol.value + index * INSN_SIZE:#x} leads to"
                    f" {destination:#x}, which starts no function"
                )
            found.append(Relocation(index, RelocationKind.CALL, callee))
        index += 2 if opcode == _LD_IMM64 else 1
    return found


def _string(table: bytes, offset: int, what: str) -> str:
    if offset >= len(table) and not (offset == 0 and not table):
        raise ELFFormatError(f"{what}: string offset {offset} out of range")
    end = table.find(b"\0", offset)
    if end < 0:
        raise ELFFormatError(f"{what}: string is not NUL-terminated")
    return table[offset:end].decode("utf-8", "surrogateescape")


def _datasec_variables(btf: Spec, name: str) -> dict[str, Var]:
    try:
        datasec = btf.find(name, Kind.DATASEC)
    except BTFError:
        return {}
    assert isinstance(datasec, Datasec)
    found = {}
    for info in datasec.vars:
        var = btf.type_by_id(info.type)
        if isinstance(var, Var):
            found[var.name] = var
    return found


def _strip(btf: Spec, type_id: int) -> Type:
    t = btf.type_by_id(type_id)
    for _ in range(32):
        if isinstance(t, Reference | TypeTag) and not isinstance(t, Pointer):
            t = btf.type_by_id(t.target)
        else:
            return t
    raise ELFFormatError(f"type {type_id}: qualifier chain too long")


def _map_from_btf(btf: Spec, name: str, type_id: int) -> MapSpec:
    definition = _strip(btf, type_id)
    if not isinstance(definition, Composite) or definition.kind != Kind.STRUCT:
        raise ELFFormatError(f"map {name!r}: its definition is not a struct")
    numbers: dict[str, int] = {}
    key_id = value_id = 0
    for member in definition.members:
        pointer = _strip(btf, member.type)
        if not isinstance(pointer, Pointer):
            raise ELFFormatError(f"map {name!r}: attribute {member.name!r} is not a pointer")
        if member.name in ("key", "value"):
            if member.name == "key":
                key_id = pointer.target
            else:
                value_id = pointer.target
            numbers[member.name + "_size"] = btf.sizeof(pointer.target)
        elif member.name in _NUMERIC_ATTRIBUTES or member.name in _IGNORED_ATTRIBUTES:
            array = _strip(btf, pointer.target)
            if not isinstance(array, Array):
                raise ELFFormatError(f"map {name!r}: {member.name!r} is not int (*)[N]")
            numbers[member.name] = array.count
        else:
            raise ELFFormatError(f"map {name!r}: unsupported attribute {member.name!r}")
    if "type" not in numbers:
        raise ELFFormatError(f"map {name!r} has no type")
    return MapSpec(
        name,
        numbers["type"],
        numbers.get("key_size", 0),
        numbers.get("value_size", 0),
        numbers.get("max_entries", 0),
        numbers.get("map_flags", 0),
        key_id,
        value_id,
    )

