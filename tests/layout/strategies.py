"""Hypothesis strategies for layout types and their values."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

from pykex.layout import (
    Array,
    Bytes,
    LayoutType,
    be16,
    be32,
    be64,
    bool_,
    i8,
    i16,
    i32,
    i64,
    make_struct,
    u8,
    u16,
    u32,
    u64,
)

SCALARS = [u8, u16, u32, u64, i8, i16, i32, i64, be16, be32, be64, bool_]

_struct_numbers = itertools.count()


@st.composite
def layout_types(draw: st.DrawFn, depth: int = 2) -> LayoutType:
    """A scalar, Bytes, Array or Struct type, nested at most ``depth`` deep."""
    kinds = ["scalar"] * 4 + ["bytes"]
    if depth > 0:
        kinds += ["array", "array", "struct"]
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        return draw(st.sampled_from(SCALARS))
    if kind == "bytes":
        return Bytes[draw(st.integers(1, 7))]
    if kind == "array":
        return Array[draw(layout_types(depth - 1)), draw(st.integers(1, 4))]
    return draw(struct_types(depth - 1))


@st.composite
def struct_types(draw: st.DrawFn, depth: int = 2) -> LayoutType:
    """A new Struct class with 1-6 fields, packed or not."""
    count = draw(st.integers(1, 6))
    fields = [(f"f{i}", draw(layout_types(depth))) for i in range(count)]
    return make_struct(f"S{next(_struct_numbers)}", fields, packed=draw(st.booleans()))


def values_of(t: LayoutType) -> st.SearchStrategy[Any]:
    """Values that fit ``t``, in the shapes ``t.check`` accepts."""
    if t.kind == "int":
        return st.integers(t.min, t.max)
    if t.kind == "bool":
        return st.booleans()
    if t.kind == "bytes":
        return st.binary(min_size=t.length, max_size=t.length)
    if t.kind == "array":
        return st.lists(values_of(t.element), min_size=t.length, max_size=t.length)
    fields = {f.name: values_of(f.type) for f in t.fields}
    return st.fixed_dictionaries(fields).map(lambda d: t(**d))
