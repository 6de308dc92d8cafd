"""``.BTF.ext``: function and line information for BPF programs.

Two encodings of the same facts exist, and they count instructions
differently:

* the ELF section ``.BTF.ext`` (what clang writes, what libbpf reads) groups
  records per ELF section and gives each record's position as a **byte**
  offset from the start of that section (``insn_off = index * 8``);
* ``BPF_PROG_LOAD`` takes flat arrays of ``struct bpf_func_info`` and
  ``struct bpf_line_info`` whose ``insn_off`` is an **instruction index**
  into the program being loaded (a 16-byte ``ld_imm64`` counts as two).

In this module :class:`FuncInfo` and :class:`LineInfo` always hold
instruction indices; :func:`encode_ext`/:func:`decode_ext` convert to and
from bytes, and :func:`kernel_func_info`/:func:`kernel_line_info` produce
the syscall arrays. Strings (section, file and source-line text) live in the
string table of the matching ``.BTF``; CO-RE relocation records are not
produced and are skipped when decoding.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from pykex.btf.builder import Builder
from pykex.btf.errors import BTFError, BTFFormatError
from pykex.btf.reader import BTF_MAGIC, detect_byteorder
from pykex.btf.reader import Spec as BTFSpec

INSN_SIZE = 8
EXT_VERSION = 1
#: Header with func_info, line_info and core_relo offsets (the layout clang writes).
EXT_HEADER_SIZE = 32
EXT_MIN_HEADER_SIZE = 24
FUNC_INFO_REC_SIZE = 8
LINE_INFO_REC_SIZE = 16
LINE_BITS = 22
COLUMN_BITS = 10


@dataclass(frozen=True, slots=True)
class FuncInfo:
    """Instruction ``insn`` starts the function whose BTF FUNC is ``type_id``."""

    insn: int
    type_id: int


@dataclass(frozen=True, slots=True)
class LineInfo:
    """Instruction ``insn`` comes from ``file_name:line:column`` whose text is ``line_text``."""

    insn: int
    file_name: str
    line_text: str
    line: int
    column: int

    @property
    def line_col(self) -> int:
        """The packed ``line << 10 | column`` word of the records."""
        if not 0 <= self.line < 1 << LINE_BITS or not 0 <= self.column < 1 << COLUMN_BITS:
            raise BTFError(
                f"line {self.line} column {self.column} do not fit BTF line info"
                f" ({LINE_BITS} and {COLUMN_BITS} bits)"
            )
        return self.line << COLUMN_BITS | self.column


@dataclass
class ExtInfo:
    """Contents of a ``.BTF.ext`` section, records grouped by ELF section name."""

    func_info: dict[str, list[FuncInfo]] = field(default_factory=dict)
    line_info: dict[str, list[LineInfo]] = field(default_factory=dict)


def encode_ext(ext: ExtInfo, strings: Builder) -> bytes:
    """Encode ``ext`` as an ELF ``.BTF.ext`` section.

    Strings are interned into ``strings``, the builder of the matching
    ``.BTF``: emit that builder only after this call. The byte order is the
    builder's.
    """
    order = "<" if strings.byteorder == "little" else ">"

    def subsection(rec_size: int, groups: dict[str, list], encode_record) -> bytes:
        if not any(groups.values()):
            return b""
        out = bytearray(struct.pack(order + "I", rec_size))
        for section, records in groups.items():
            if not records:
                continue
            out += struct.pack(order + "II", strings.add_string(section), len(records))
            for record in records:
                out += encode_record(record)
        return bytes(out)

    func = subsection(
        FUNC_INFO_REC_SIZE,
        ext.func_info,
        lambda r: struct.pack(order + "II", _insn_bytes(r.insn), r.type_id),
    )
    line = subsection(
        LINE_INFO_REC_SIZE,
        ext.line_info,
        lambda r: struct.pack(
            order + "IIII",
            _insn_bytes(r.insn),
            strings.add_string(r.file_name),
            strings.add_string(r.line_text),
            r.line_col,
        ),
    )
    header = struct.pack(
        order + "HBBIIIIIII",
        BTF_MAGIC,
        EXT_VERSION,
        0,
        EXT_HEADER_SIZE,
        0,
        len(func),
        len(func),
        len(line),
        len(func) + len(line),
        0,
    )
    return header + func + line


def _insn_bytes(insn: int) -> int:
    if insn < 0:
        raise BTFError(f"negative instruction index {insn}")
    return insn * INSN_SIZE


def decode_ext(data: bytes, btf: BTFSpec) -> ExtInfo:
    """Decode an ELF ``.BTF.ext`` section; ``btf`` is the matching ``.BTF``."""
    data = bytes(data)
    order = "<" if detect_byteorder(data) == "little" else ">"
    if len(data) < EXT_MIN_HEADER_SIZE:
        raise BTFFormatError("data too short for the .BTF.ext header", 0)
    _, version, _, hdr_len, func_off, func_len, line_off, line_len = struct.unpack_from(
        order + "HBBIIIII", data, 0
    )
    if version != EXT_VERSION:
        raise BTFFormatError(f"unsupported .BTF.ext version {version}", 2)
    if not EXT_MIN_HEADER_SIZE <= hdr_len <= len(data):
        raise BTFFormatError(f"bad .BTF.ext header length {hdr_len}", 4)
    u32, u32x2 = struct.Struct(order + "I"), struct.Struct(order + "II")
    u32x4 = struct.Struct(order + "IIII")

    def groups(offset: int, length: int, min_rec_size: int, where: int):
        start = hdr_len + offset
        end = start + length
        if end > len(data):
            raise BTFFormatError("info section runs past the end of .BTF.ext", where)
        if length == 0:
            return
        if length < 4:
            raise BTFFormatError("info section too short for its record size", start)
        (rec_size,) = u32.unpack_from(data, start)
        if rec_size < min_rec_size or rec_size % 4:
            raise BTFFormatError(f"bad record size {rec_size}", start)
        pos = start + 4
        while pos < end:
            if pos + 8 > end:
                raise BTFFormatError("truncated info section header", pos)
            name_off, count = u32x2.unpack_from(data, pos)
            section = btf.string_at(name_off, pos)
            pos += 8
            if pos + count * rec_size > end:
                raise BTFFormatError(f"{count} records of section {section!r} overrun", pos)
            records = [pos + i * rec_size for i in range(count)]
            pos += count * rec_size
            yield section, records

    def insn_index(byte_offset: int, where: int) -> int:
        if byte_offset % INSN_SIZE:
            raise BTFFormatError(f"insn_off {byte_offset} is not a multiple of 8", where)
        return byte_offset // INSN_SIZE

    ext = ExtInfo()
    for section, positions in groups(func_off, func_len, FUNC_INFO_REC_SIZE, 8):
        funcs = ext.func_info.setdefault(section, [])
        for pos in positions:
            insn_off, type_id = u32x2.unpack_from(data, pos)
            funcs.append(FuncInfo(insn_index(insn_off, pos), type_id))
    for section, positions in groups(line_off, line_len, LINE_INFO_REC_SIZE, 16):
        records = ext.line_info.setdefault(section, [])
        for pos in positions:
            insn_off, file_off, text_off, line_col = u32x4.unpack_from(data, pos)
            records.append(
                LineInfo(
                    insn_index(insn_off, pos),
                    btf.string_at(file_off, pos),
                    btf.string_at(text_off, pos),
                    line_col >> COLUMN_BITS,
                    line_col & (1 << COLUMN_BITS) - 1,
                )
            )
    return ext


def kernel_func_info(records: Sequence[FuncInfo], start: int = 0) -> bytes:
    """``struct bpf_func_info[]`` for BPF_PROG_LOAD (record size :data:`FUNC_INFO_REC_SIZE`).

    ``start`` is the index of the program's first instruction within the
    records' numbering; the kernel counts from the program start.
    """
    out = bytearray()
    for r in records:
        out += struct.pack("=II", _relative(r.insn, start), r.type_id)
    return bytes(out)


def kernel_line_info(records: Sequence[LineInfo], strings: Builder, start: int = 0) -> bytes:
    """``struct bpf_line_info[]`` for BPF_PROG_LOAD (record size :data:`LINE_INFO_REC_SIZE`).

    File names and line text are interned into ``strings``, the builder of
    the BTF loaded with the program: emit it after this call.
    """
    out = bytearray()
    for r in records:
        out += struct.pack(
            "=IIII",
            _relative(r.insn, start),
            strings.add_string(r.file_name),
            strings.add_string(r.line_text),
            r.line_col,
        )
    return bytes(out)


def _relative(insn: int, start: int) -> int:
    if insn < start:
        raise BTFError(f"instruction {insn} lies before the program start {start}")
    return insn - start
