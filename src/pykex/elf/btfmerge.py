"""Extending an existing raw BTF blob with more types and strings.

The writer adds map definitions, DATASECs and FUNCs to the BTF a compiler
hands it; the loader adds line-info strings to the BTF a reader produced.
Both keep every existing type id and string offset: new types are built as
split BTF on top of the blob (ids and string offsets continue where the blob
ends), and :meth:`ExtendingBuilder.merged` concatenates the two type
sections and the two string sections into one standalone blob.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from pykex.btf import Builder, Datasec, Func, FuncLinkage, FuncProto, Kind, Spec, VarLinkage
from pykex.btf.reader import BTF_MAGIC, BTF_VERSION, HEADER_SIZE

_HEADER = struct.Struct("<HBBIIIII")


def _sections(raw: bytes) -> tuple[bytes, bytes]:
    """The type and string sections of a little-endian BTF blob already checked by Spec."""
    _, _, _, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(raw, 0)
    types = raw[hdr_len + type_off : hdr_len + type_off + type_len]
    strings = raw[hdr_len + str_off : hdr_len + str_off + str_len]
    return types, strings


def encode_raw(types: bytes, strings: bytes) -> bytes:
    """A little-endian BTF blob from its type and string sections."""
    header = _HEADER.pack(
        BTF_MAGIC, BTF_VERSION, 0, HEADER_SIZE, 0, len(types), len(types), len(strings)
    )
    return header + types + strings


class ExtendingBuilder(Builder):
    """A :class:`Builder` whose output is appended to ``raw`` (little-endian BTF)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = bytes(raw)
        self.spec = Spec.parse(self.raw)
        if self.spec.byteorder != "little":
            raise ValueError("only little-endian BTF can be extended")
        super().__init__(base=self.spec)
        _, strings = _sections(self.raw)
        self._existing: dict[str, int] = {}
        offset = 0
        for text in strings.split(b"\0")[:-1]:
            self._existing.setdefault(text.decode("utf-8", "surrogateescape"), offset)
            offset += len(text) + 1

    def add_string(self, text: str) -> int:
        # Reuse strings the blob already has, so extending twice adds nothing twice.
        existing = self._existing.get(text)
        return existing if existing is not None else super().add_string(text)

    def merged(self) -> bytes:
        """The original blob with everything added so far, as one standalone blob."""
        base_types, base_strings = _sections(self.raw)
        new_types, new_strings = _sections(self.emit())
        return encode_raw(base_types + new_types, base_strings + new_strings)


# Bytes after the 12-byte common header of each BTF kind: (fixed, per vlen entry).
_RECORD_TAIL = {
    Kind.INT: (4, 0),
    Kind.ARRAY: (12, 0),
    Kind.STRUCT: (0, 12),
    Kind.UNION: (0, 12),
    Kind.ENUM: (0, 8),
    Kind.FUNC_PROTO: (0, 8),
    Kind.VAR: (4, 0),
    Kind.DATASEC: (0, 12),
    Kind.DECL_TAG: (4, 0),
    Kind.ENUM64: (0, 12),
}


def record_positions(raw: bytes) -> Iterator[tuple[int, int, int]]:
    """(type id, kind, byte position) of every record of a blob Spec has validated."""
    hdr_len, type_off, type_len = struct.unpack_from("<III", raw, 4)
    position, end = hdr_len + type_off, hdr_len + type_off + type_len
    type_id = 1
    while position < end:
        info = struct.unpack_from("<I", raw, position + 4)[0]
        kind, vlen = info >> 24 & 0x1F, info & 0xFFFF
        yield type_id, kind, position
        fixed, per_entry = _RECORD_TAIL.get(Kind(kind), (0, 0))
        position += 12 + fixed + per_entry * vlen
        type_id += 1


def kernel_ready(raw: bytes) -> ExtendingBuilder:
    """A builder over ``raw`` with extern declarations rewritten the way the kernel accepts.

    The kernel refuses FUNCs with extern linkage and DATASECs listing FUNCs,
    both of which clang writes for kfuncs declared ``extern ... __ksym``.
    As libbpf does, each extern FUNC becomes GLOBAL and every entry of an
    extern DATASEC (``.ksyms``) a 4-byte int VAR.
    """
    builder = ExtendingBuilder(raw)
    spec = builder.spec
    patched = bytearray(raw)
    positions = {type_id: position for type_id, _, position in record_positions(raw)}
    placeholder = 0
    for type_id, position in positions.items():
        t = spec.type_by_id(type_id)
        if isinstance(t, Func) and t.linkage == FuncLinkage.EXTERN:
            info = struct.unpack_from("<I", patched, position + 4)[0]
            struct.pack_into("<I", patched, position + 4, info & ~0xFFFF | FuncLinkage.GLOBAL)
            # Global functions need named parameters; clang leaves externs' unnamed.
            proto = spec.type_by_id(t.proto)
            if isinstance(proto, FuncProto) and t.proto in positions:
                for index, param in enumerate(proto.params):
                    if not param.name:
                        name_at = positions[t.proto] + 12 + 8 * index
                        struct.pack_into("<I", patched, name_at, builder.add_string("arg"))
        elif isinstance(t, Datasec) and t.name == ".ksyms":
            if not placeholder:
                int_id = builder.add_int("int", 4, signed=True)
                placeholder = builder.add_var("dummy_ksym", int_id, VarLinkage.GLOBAL_ALLOCATED)
            struct.pack_into("<I", patched, position + 8, 4 * len(t.vars))
            for index in range(len(t.vars)):
                entry = position + 12 + 12 * index
                struct.pack_into("<III", patched, entry, placeholder, 4 * index, 4)
    builder.raw = bytes(patched)
    return builder
