"""Text rendering of BTF in the layout of ``bpftool btf dump`` (raw format).

One line per type (``[id] KIND 'name' attributes``) followed by one
tab-indented line per member, enumerator, parameter or section variable.
Matching bpftool's layout lets tests compare pykex's reading of a blob with
an independent one line for line, and makes pykex's BTF output easy to diff.
"""

from __future__ import annotations

from collections.abc import Iterable

from pykex.btf.types import (
    Array,
    Composite,
    Datasec,
    DeclTag,
    Enum64,
    EnumBase,
    Float,
    Func,
    FuncLinkage,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Reference,
    Type,
    Var,
    VarLinkage,
)

_INT_ENCODINGS = {
    IntEncoding.NONE: "(none)",
    IntEncoding.SIGNED: "SIGNED",
    IntEncoding.CHAR: "CHAR",
    IntEncoding.BOOL: "BOOL",
}
_FUNC_LINKAGES = {
    FuncLinkage.STATIC: "static",
    FuncLinkage.GLOBAL: "global",
    FuncLinkage.EXTERN: "extern",
}
_VAR_LINKAGES = {
    VarLinkage.STATIC: "static",
    VarLinkage.GLOBAL_ALLOCATED: "global",
    VarLinkage.GLOBAL_EXTERN: "extern",
}


def _name(text: str) -> str:
    return f"'{text or '(anon)'}'"


def format_type(t: Type, type_by_id=None) -> str:
    """One type in bpftool's raw layout.

    ``type_by_id`` (e.g. ``spec.type_by_id``) lets DATASEC entries name
    their variables the way bpftool does.
    """
    head = f"[{t.id}] {t.kind.name} {_name(t.name)}"
    if isinstance(t, Int):
        encoding = _INT_ENCODINGS.get(t.encoding, "UNKN")
        return f"{head} size={t.size} bits_offset={t.offset} nr_bits={t.bits} encoding={encoding}"
    if isinstance(t, Reference):
        return f"{head} type_id={t.target}"
    if isinstance(t, Array):
        return f"{head} type_id={t.element} index_type_id={t.index} nr_elems={t.count}"
    if isinstance(t, Composite):
        lines = [f"{head} size={t.size} vlen={len(t.members)}"]
        for m in t.members:
            line = f"\t{_name(m.name)} type_id={m.type} bits_offset={m.bit_offset}"
            if m.bitfield_size:
                line += f" bitfield_size={m.bitfield_size}"
            lines.append(line)
        return "\n".join(lines)
    if isinstance(t, EnumBase):
        signedness = "SIGNED" if t.signed else "UNSIGNED"
        lines = [f"{head} encoding={signedness} size={t.size} vlen={len(t.values)}"]
        suffix = ("LL" if t.signed else "ULL") if isinstance(t, Enum64) else ""
        lines += [f"\t{_name(v.name)} val={v.value}{suffix}" for v in t.values]
        return "\n".join(lines)
    if isinstance(t, Fwd):
        return f"{head} fwd_kind={'union' if t.union else 'struct'}"
    if isinstance(t, Func):
        return f"{head} type_id={t.proto} linkage={_FUNC_LINKAGES[t.linkage]}"
    if isinstance(t, FuncProto):
        lines = [f"{head} ret_type_id={t.result} vlen={len(t.params)}"]
        lines += [f"\t{_name(p.name)} type_id={p.type}" for p in t.params]
        return "\n".join(lines)
    if isinstance(t, Var):
        return f"{head} type_id={t.type}, linkage={_VAR_LINKAGES[t.linkage]}"
    if isinstance(t, Datasec):
        lines = [f"{head} size={t.size} vlen={len(t.vars)}"]
        for v in t.vars:
            line = f"\ttype_id={v.type} offset={v.offset} size={v.size}"
            if type_by_id is not None:
                target = type_by_id(v.type)
                line += f" ({target.kind.name} {_name(target.name)})"
            lines.append(line)
        return "\n".join(lines)
    if isinstance(t, Float):
        return f"{head} size={t.size}"
    if isinstance(t, DeclTag):
        return f"{head} type_id={t.target} component_idx={t.component_index}"
    return head


def dump(types: Iterable[Type], type_by_id=None) -> str:
    """All ``types`` in bpftool's raw layout, one block per type."""
    return "\n".join(format_type(t, type_by_id) for t in types) + "\n"
