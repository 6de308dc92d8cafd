"""BTF for pykex: read the kernel's types, write the program's.

Reading
    :func:`load_vmlinux` parses ``/sys/kernel/btf/vmlinux`` once per process
    into a :class:`Spec`; :func:`load_kernel_module` adds a module's split
    BTF on top; :meth:`Spec.parse` reads any raw blob (either byte order,
    e.g. a ``.BTF`` section from clang). A spec answers ``type_by_id``,
    ``find(name, kind=...)``, ``types()``, layout questions (``sizeof``,
    ``member("a.b.c")``), enum values and kfunc ids (a kfunc is a FUNC
    carrying the ``bpf_kfunc`` decl tag). Malformed input raises
    :class:`BTFFormatError` with the byte offset of the problem.

Types
    One frozen dataclass per BTF kind (:mod:`pykex.btf.types`); references
    between types are ids, so the same values serve the reader and the
    writer.

Writing
    :class:`Builder` deduplicates types, hands out ids in insertion order,
    interns strings and emits raw BTF, with helpers for ``bpf_spin_lock``
    and libbpf-style ``.maps`` definitions. :mod:`pykex.btf.ext` encodes and
    decodes ``.BTF.ext`` (func and line info) and builds the arrays
    ``BPF_PROG_LOAD`` takes.

Tracepoints
    :func:`tracepoint_format` parses ``events/<group>/<name>/format`` from
    tracefs (:func:`tracefs_root` mounts tracefs when it is absent).
"""

from pykex.btf.builder import Builder, MapPlacement
from pykex.btf.dump import dump, format_type
from pykex.btf.errors import BTFError, BTFFormatError, BTFNotFoundError, TracepointFormatError
from pykex.btf.ext import (
    FUNC_INFO_REC_SIZE,
    LINE_INFO_REC_SIZE,
    ExtInfo,
    FuncInfo,
    LineInfo,
    decode_ext,
    encode_ext,
    kernel_func_info,
    kernel_line_info,
)
from pykex.btf.reader import MemberLayout, Spec, load_kernel_module, load_vmlinux
from pykex.btf.tracefs import tracefs_root
from pykex.btf.tracepoint import (
    TracepointField,
    TracepointFormat,
    parse_format,
    tracepoint_format,
)
from pykex.btf.types import (
    VOID,
    Array,
    Composite,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumBase,
    EnumValue,
    Float,
    Func,
    FuncLinkage,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Kind,
    Member,
    Param,
    Pointer,
    Reference,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarLinkage,
    VarSecinfo,
    Void,
    Volatile,
)

__all__ = [
    "FUNC_INFO_REC_SIZE",
    "LINE_INFO_REC_SIZE",
    "VOID",
    "Array",
    "BTFError",
    "BTFFormatError",
    "BTFNotFoundError",
    "Builder",
    "Composite",
    "Const",
    "Datasec",
    "DeclTag",
    "Enum",
    "Enum64",
    "EnumBase",
    "EnumValue",
    "ExtInfo",
    "Float",
    "Func",
    "FuncInfo",
    "FuncLinkage",
    "FuncProto",
    "Fwd",
    "Int",
    "IntEncoding",
    "Kind",
    "LineInfo",
    "MapPlacement",
    "Member",
    "MemberLayout",
    "Param",
    "Pointer",
    "Reference",
    "Restrict",
    "Spec",
    "Struct",
    "TracepointField",
    "TracepointFormat",
    "TracepointFormatError",
    "Type",
    "TypeTag",
    "Typedef",
    "Union",
    "Var",
    "VarLinkage",
    "VarSecinfo",
    "Void",
    "Volatile",
    "decode_ext",
    "dump",
    "encode_ext",
    "format_type",
    "kernel_func_info",
    "kernel_line_info",
    "load_kernel_module",
    "load_vmlinux",
    "parse_format",
    "tracefs_root",
    "tracepoint_format",
]
