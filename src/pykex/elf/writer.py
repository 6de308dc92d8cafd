"""Writing an :class:`~pykex.elf.spec.ObjectSpec` as a libbpf-style BPF ELF object.

The layout follows what clang produces for ``clang -target bpf -c``, so
libbpf (``bpftool prog loadall``), llvm-readelf and llvm-objdump read it:

* ELF64, little-endian, ``ET_REL``, ``e_machine`` EM_BPF;
* one executable section per program section name (several programs may
  share one), subprograms in ``.text``, each with a ``.rel<section>``;
* ``.data``/``.rodata`` (PROGBITS) and ``.bss`` (NOBITS) for global data,
  ``.maps`` for BTF-defined maps, ``license``;
* ``.symtab``/``.strtab``: section symbols, FUNC symbols for functions
  (GLOBAL for programs, LOCAL for subprograms), OBJECT symbols for maps and
  variables;
* ``.BTF`` with the map definitions, a DATASEC per section that holds
  symbols and a FUNC for every function, and ``.BTF.ext`` with func and line
  info.

The object's own BTF (``ObjectSpec.btf``) is extended, never rewritten, so
the type ids the spec refers to stay valid. Whatever that BTF already
describes (a ``.maps`` or data DATASEC, a FUNC at a function's start) is
reused, which makes writing what the reader returned reproduce the bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pykex.btf import (
    Builder,
    Datasec,
    ExtInfo,
    FuncInfo,
    FuncLinkage,
    Kind,
    LineInfo,
    VarSecinfo,
    encode_ext,
)
from pykex.btf.errors import BTFError, BTFNotFoundError

from .btfmerge import ExtendingBuilder
from .errors import ObjectSpecError
from .spec import (
    INSN_SIZE,
    LICENSE_SECTION,
    MAPS_SECTION,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    RelocationKind,
    is_read_only_section,
)

EM_BPF = 247
ET_REL = 1

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHT_REL = 9

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_INFO_LINK = 0x40

STB_LOCAL = 0
STB_GLOBAL = 1
STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3

R_BPF_64_64 = 1
R_BPF_64_32 = 10

ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
SYMBOL = struct.Struct("<IBBHQQ")
REL = struct.Struct("<QQ")

_LD_IMM64 = 0x18


@dataclass
class _Section:
    name: str
    type: int
    flags: int = 0
    data: bytes = b""
    size: int | None = None  # NOBITS sections have a size but no bytes
    link: int = 0
    info: int = 0
    align: int = 1
    entsize: int = 0
    index: int = 0
    target: _Section | None = None  # what a relocation section relocates
    relocations: list[tuple[int, _Symbol, int]] = field(default_factory=list)


@dataclass
class _Symbol:
    name: str
    value: int
    size: int
    kind: int
    binding: int
    section: _Section | None  # None: undefined (kernel functions)


@dataclass
class _Layout:
    sections: list[_Section] = field(default_factory=list)
    local_symbols: list[_Symbol] = field(default_factory=list)
    global_symbols: list[_Symbol] = field(default_factory=list)

    def add(self, section: _Section) -> _Section:
        section.index = len(self.sections) + 1  # index 0 is the null section
        self.sections.append(section)
        return section


def write_object(spec: ObjectSpec) -> bytes:
    """The ELF bytes of ``spec``; :class:`ObjectSpecError` if it cannot be written."""
    builder: Builder = ExtendingBuilder(spec.btf) if spec.btf else Builder()
    layout = _Layout()
    strtab = _Section(".strtab", SHT_STRTAB)
    layout.add(strtab)

    # Executable sections: .text first (its section symbol anchors nothing but
    # matches clang), then program sections in the order programs appear.
    by_section: dict[str, list[ProgramSpec]] = {}
    for function in [*spec.subprograms, *spec.programs]:
        by_section.setdefault(function.section, []).append(function)
    func_symbols: dict[str, _Symbol] = {}
    func_starts: dict[str, int] = {}
    code_sections: dict[str, _Section] = {}
    rel_sections: list[tuple[_Section, _Section]] = []
    for name, functions in by_section.items():
        code = b"".join(f.code for f in functions)
        section = layout.add(_Section(name, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, code, align=8))
        code_sections[name] = section
        rel = _Section(
            ".rel" + name, SHT_REL, SHF_INFO_LINK, align=8, entsize=REL.size, target=section
        )
        rel_sections.append((section, layout.add(rel)))
        layout.local_symbols.append(_Symbol("", 0, 0, STT_SECTION, STB_LOCAL, section))
        offset = 0
        for function in functions:
            binding = STB_LOCAL if function.is_subprogram else STB_GLOBAL
            symbol = _Symbol(function.name, offset, len(function.code), STT_FUNC, binding, section)
            (layout.local_symbols if binding == STB_LOCAL else layout.global_symbols).append(
                symbol
            )
            func_symbols[function.name] = symbol
            func_starts[function.name] = offset // INSN_SIZE
            offset += len(function.code)

    data_maps = [m for m in spec.maps if m.is_global_data]
    defined_maps = [m for m in spec.maps if not m.is_global_data]
    data_sections: dict[str, _Section] = {}
    for map_spec in data_maps:
        section = _data_section(map_spec)
        layout.add(section)
        data_sections[map_spec.name] = section
        layout.local_symbols.append(_Symbol("", 0, 0, STT_SECTION, STB_LOCAL, section))
        for var in map_spec.variables:
            layout.global_symbols.append(
                _Symbol(var.name, var.offset, var.size, STT_OBJECT, STB_GLOBAL, section)
            )

    map_symbols: dict[str, _Symbol] = {}
    if defined_maps:
        placements = _place_maps(builder, defined_maps)
        size = max((offset + length for offset, length in placements.values()), default=0)
        maps_section = layout.add(
            _Section(MAPS_SECTION, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, bytes(size), align=8)
        )
        for map_spec in defined_maps:
            offset, length = placements[map_spec.name]
            symbol = _Symbol(map_spec.name, offset, length, STT_OBJECT, STB_GLOBAL, maps_section)
            layout.global_symbols.append(symbol)
            map_symbols[map_spec.name] = symbol
    for map_spec in data_maps:
        _describe_data_section(builder, map_spec)

    license_bytes = spec.license.encode() + b"\0"
    license_section = layout.add(
        _Section(LICENSE_SECTION, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, license_bytes)
    )
    layout.global_symbols.append(
        _Symbol("LICENSE", 0, len(license_bytes), STT_OBJECT, STB_GLOBAL, license_section)
    )

    kfunc_symbols: dict[str, _Symbol] = {}
    for code_section, rel in rel_sections:
        for function in by_section[code_section.name]:
            base = func_symbols[function.name].value
            for reloc in function.relocations:
                at = base + reloc.insn * INSN_SIZE
                is_call = function.code[reloc.insn * INSN_SIZE] != _LD_IMM64
                if reloc.kind is RelocationKind.MAP:
                    target, kind = map_symbols[reloc.target], R_BPF_64_64
                elif reloc.kind is RelocationKind.MAP_VALUE:
                    target = _section_symbol(layout, data_sections[reloc.target])
                    kind = R_BPF_64_64
                elif reloc.kind is RelocationKind.CALL:
                    target = func_symbols[reloc.target]
                    kind = R_BPF_64_32 if is_call else R_BPF_64_64
                else:
                    target = kfunc_symbols.get(reloc.target) or _undefined(
                        layout, kfunc_symbols, reloc.target
                    )
                    kind = R_BPF_64_32
                rel.relocations.append((at, target, kind))
    # clang writes no empty relocation sections
    layout.sections = [s for s in layout.sections if s.type != SHT_REL or s.relocations]

    ext = _debug_info(builder, spec, by_section, func_starts)
    ext_bytes = encode_ext(ext, builder)
    try:
        btf = builder.merged() if isinstance(builder, ExtendingBuilder) else builder.emit()
    except BTFError as error:
        raise ObjectSpecError(f"cannot encode the object's BTF: {error}") from None
    layout.add(_Section(".BTF", SHT_PROGBITS, data=btf, align=4))
    layout.add(_Section(".BTF.ext", SHT_PROGBITS, data=ext_bytes, align=4))
    symtab = layout.add(_Section(".symtab", SHT_SYMTAB, align=8, entsize=SYMBOL.size))
    return _serialize(layout, strtab, symtab)


def _data_section(map_spec: MapSpec) -> _Section:
    assert map_spec.data is not None
    writable = 0 if is_read_only_section(map_spec.name) else SHF_WRITE
    if map_spec.name == ".bss":
        if any(map_spec.data):
            raise ObjectSpecError(".bss holds zero-initialised data; put contents in .data")
        return _Section(
            map_spec.name, SHT_NOBITS, SHF_ALLOC | SHF_WRITE, size=len(map_spec.data), align=8
        )
    return _Section(map_spec.name, SHT_PROGBITS, SHF_ALLOC | writable, map_spec.data, align=8)


def _existing_datasec(builder: Builder, name: str) -> Datasec | None:
    if not isinstance(builder, ExtendingBuilder):
        return None
    try:
        found = builder.spec.find(name, Kind.DATASEC)
    except BTFNotFoundError:
        return None
    assert isinstance(found, Datasec)
    return found


def _place_maps(builder: Builder, maps: list[MapSpec]) -> dict[str, tuple[int, int]]:
    """(offset, size) of each map's definition in ``.maps``, adding the BTF if missing."""
    existing = _existing_datasec(builder, MAPS_SECTION)
    if existing is not None:
        placements = {}
        for info in existing.vars:
            var = builder.type_by_id(info.type)
            placements[var.name] = (info.offset, info.size)
        missing = {m.name for m in maps} - placements.keys()
        if missing:
            raise ObjectSpecError(
                f"the object's BTF describes .maps without {sorted(missing)}"
            )
        return placements
    definitions = []
    for m in maps:
        try:
            struct_id = builder.add_map_definition(
                map_type=m.type,
                max_entries=m.max_entries,
                key=m.btf_key_type_id or None,
                value=m.btf_value_type_id or None,
                key_size=None if m.btf_key_type_id or not m.key_size else m.key_size,
                value_size=None if m.btf_value_type_id or not m.value_size else m.value_size,
                map_flags=m.flags or None,
            )
        except BTFError as error:
            raise ObjectSpecError(f"map {m.name!r}: {error}") from None
        definitions.append((m.name, struct_id))
    _, placed = builder.add_maps_section(definitions)
    return {p.name: (p.offset, p.size) for p in placed}


def _describe_data_section(builder: Builder, map_spec: MapSpec) -> None:
    """A DATASEC for a global-data section's variables (libbpf gives the map this BTF)."""
    if not map_spec.variables or _existing_datasec(builder, map_spec.name) is not None:
        return
    byte = builder.add_int("unsigned char", 1)
    infos = []
    for var in sorted(map_spec.variables, key=lambda v: v.offset):
        type_id = var.btf_type_id or builder.add_array(byte, var.size)
        infos.append(VarSecinfo(builder.add_var(var.name, type_id), var.offset, var.size))
    builder.add_datasec(map_spec.name, map_spec.value_size, infos)


def _debug_info(
    builder: Builder,
    spec: ObjectSpec,
    by_section: dict[str, list[ProgramSpec]],
    func_starts: dict[str, int],
) -> ExtInfo:
    """func/line info per section; a FUNC is made for every function that lacks one."""
    ext = ExtInfo()
    int_id = 0
    for section, functions in by_section.items():
        funcs = ext.func_info.setdefault(section, [])
        lines = ext.line_info.setdefault(section, [])
        for function in functions:
            start = func_starts[function.name]
            records = list(function.func_info)
            if not any(r.insn == 0 for r in records):
                int_id = int_id or builder.add_int("int", 4, signed=True)
                records.insert(0, FuncInfo(0, _make_func(builder, function, int_id)))
            funcs += [FuncInfo(start + r.insn, r.type_id) for r in records]
            lines += [
                LineInfo(start + r.insn, r.file_name, r.line_text, r.line, r.column)
                for r in function.line_info
            ]
    return ext


def _make_func(builder: Builder, function: ProgramSpec, int_id: int) -> int:
    if function.is_subprogram:
        # Static: the verifier checks it in its callers' context, whatever its arguments.
        proto = builder.add_func_proto(int_id, [])
        return builder.add_func(function.name, proto, FuncLinkage.STATIC)
    context = builder.add_pointer(0)
    proto = builder.add_func_proto(int_id, [("ctx", context)])
    return builder.add_func(function.name, proto, FuncLinkage.GLOBAL)


def _section_symbol(layout: _Layout, section: _Section) -> _Symbol:
    for symbol in layout.local_symbols:
        if symbol.kind == STT_SECTION and symbol.section is section:
            return symbol
    raise AssertionError(f"no section symbol for {section.name}")


def _undefined(layout: _Layout, cache: dict[str, _Symbol], name: str) -> _Symbol:
    symbol = _Symbol(name, 0, 0, STT_NOTYPE, STB_GLOBAL, None)
    layout.global_symbols.append(symbol)
    cache[name] = symbol
    return symbol


def _serialize(layout: _Layout, strtab: _Section, symtab: _Section) -> bytes:
    for index, section in enumerate(layout.sections, 1):
        section.index = index
    strings = bytearray(b"\0")
    offsets: dict[str, int] = {"": 0}

    def intern(text: str) -> int:
        if text not in offsets:
            offsets[text] = len(strings)
            strings.extend(text.encode() + b"\0")
        return offsets[text]

    symbols = [*layout.local_symbols, *layout.global_symbols]
    symbol_index = {id(s): i for i, s in enumerate(symbols, 1)}
    table = bytearray(SYMBOL.pack(0, 0, 0, 0, 0, 0))
    for s in symbols:
        shndx = s.section.index if s.section is not None else 0
        info = s.binding << 4 | s.kind
        table += SYMBOL.pack(intern(s.name), info, 0, shndx, s.value, s.size)
    symtab.data = bytes(table)
    symtab.link = strtab.index
    symtab.info = len(layout.local_symbols) + 1

    for section in layout.sections:
        if section.type == SHT_REL:
            assert section.target is not None
            section.link = symtab.index
            section.info = section.target.index
            section.data = b"".join(
                REL.pack(offset, symbol_index[id(symbol)] << 32 | kind)
                for offset, symbol, kind in section.relocations
            )
    for section in layout.sections:
        intern(section.name)
    strtab.data = bytes(strings)

    out = bytearray(ELF_HEADER.size)
    placed: list[tuple[_Section, int]] = []
    for section in layout.sections:
        if section.type != SHT_NOBITS:
            out += bytes(-len(out) % section.align)
        placed.append((section, len(out)))
        if section.type != SHT_NOBITS:
            out += section.data
    out += bytes(-len(out) % 8)
    section_headers = len(out)
    out += bytes(SECTION_HEADER.size)  # the null section
    for section, offset in placed:
        size = section.size if section.type == SHT_NOBITS else len(section.data)
        out += SECTION_HEADER.pack(
            offsets[section.name],
            section.type,
            section.flags,
            0,
            offset,
            size,
            section.link,
            section.info,
            section.align,
            section.entsize,
        )
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)  # ELF64, little-endian, version 1
    ELF_HEADER.pack_into(
        out,
        0,
        ident,
        ET_REL,
        EM_BPF,
        1,
        0,
        0,
        section_headers,
        0,
        ELF_HEADER.size,
        0,
        0,
        SECTION_HEADER.size,
        len(layout.sections) + 1,
        strtab.index,
    )
    return bytes(out)
