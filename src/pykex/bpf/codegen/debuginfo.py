"""BTF for generated programs: one FUNC per program and a line table that
points every instruction back at the Python line it came from.

The kernel uses it twice: the verifier prints the Python line above each
instruction of its log, and ``bpftool prog dump xlated linum`` shows the
source. The ELF writer emits the same records as ``.BTF.ext``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykex.bpf.program import EncodedProgram
from pykex.btf import (
    Builder,
    FuncInfo,
    FuncLinkage,
    LineInfo,
    Member,
    kernel_func_info,
    kernel_line_info,
)
from pykex.ir.nodes import MapDecl

if TYPE_CHECKING:
    from . import CompiledProgram


@dataclass
class DebugInfo:
    btf: bytes
    func_info: list[FuncInfo]
    line_info: list[LineInfo]
    func_info_bytes: bytes  # BPF_PROG_LOAD arrays
    line_info_bytes: bytes


def program_debug_info(
    program: CompiledProgram, encoded: EncodedProgram, file: str, source: str
) -> DebugInfo:
    """Program BTF with func and line info for ``program``.

    The kernel wants a line record at instruction 0 and strictly increasing
    offsets; instructions the compiler added itself (the prologue) are
    attributed to the first line that follows them.
    """
    builder = Builder()
    int_type = builder.add_int("int", 4, signed=True)
    ctx_type = builder.add_pointer(0)  # void *ctx: the kernel checks no more for static funcs
    proto = builder.add_func_proto(int_type, [("ctx", ctx_type)])
    func = builder.add_func(program.name, proto, FuncLinkage.STATIC)

    source_lines = source.splitlines()
    lines: list[LineInfo] = []
    last_line = None
    for slot, where in encoded.lines:
        if where.line == last_line:
            continue
        text = where.text or (
            source_lines[where.line - 1] if 0 < where.line <= len(source_lines) else ""
        )
        lines.append(LineInfo(slot, where.file or file, text, where.line, where.column))
        last_line = where.line
    if lines and lines[0].insn != 0:
        first = lines[0]
        lines[0] = LineInfo(0, first.file_name, first.line_text, first.line, first.column)
    funcs = [FuncInfo(0, func)]
    line_bytes = kernel_line_info(lines, builder) if lines else b""
    return DebugInfo(
        btf=builder.emit(),
        func_info=funcs,
        line_info=lines,
        func_info_bytes=kernel_func_info(funcs),
        line_info_bytes=line_bytes,
    )


@dataclass
class MapBTF:
    """BTF the kernel needs to create a map: its key and value types."""

    btf: bytes
    key_type_id: int
    value_type_id: int


def _lock_offsets(value_type: object) -> list[int]:
    """Offsets of the fields the kernel must know as ``struct bpf_spin_lock``."""
    fields = getattr(value_type, "fields", None) or ()
    return [f.offset for f in fields if getattr(f.type, "btf_struct", None) == "bpf_spin_lock"]


def map_btf(decl: MapDecl) -> MapBTF | None:
    """Key and value BTF for a map whose value holds a spin lock (None otherwise).

    The value is described as a struct of the value's size whose only member
    is the lock: the kernel needs nothing else to find it, and to keep the
    lock out of what user space reads and writes.
    """
    offsets = _lock_offsets(decl.value_type)
    if not offsets:
        return None
    builder = Builder()
    if decl.key_size in (1, 2, 4, 8):
        key = builder.add_int(f"__u{decl.key_size * 8}", decl.key_size)
    else:
        key = builder.add_struct(f"{decl.name}_key", decl.key_size, [])
    lock = builder.add_spin_lock()
    members = [Member(f"lock{i}", lock, offset * 8) for i, offset in enumerate(offsets)]
    value_name = getattr(decl.value_type, "__name__", f"{decl.name}_value")
    value = builder.add_struct(value_name, decl.value_size, members)
    return MapBTF(builder.emit(), key, value)
