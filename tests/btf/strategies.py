"""Hypothesis strategies producing BTF type graphs."""

from hypothesis import strategies as st

from pykex.btf import (
    Array,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncLinkage,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Member,
    Param,
    Pointer,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarLinkage,
    VarSecinfo,
    Volatile,
)

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
maybe_names = st.one_of(st.just(""), names)
u32 = st.integers(0, 2**32 - 1)


@st.composite
def ints(draw: st.DrawFn) -> Int:
    size = draw(st.sampled_from([1, 2, 4, 8, 16]))
    bits = draw(st.integers(1, size * 8))
    offset = draw(st.integers(0, size * 8 - bits))
    encoding = IntEncoding(draw(st.integers(0, 7)))
    return Int(name=draw(names), size=size, encoding=encoding, offset=offset, bits=bits)


def type_graph_element(type_ids: st.SearchStrategy[int]) -> st.SearchStrategy[Type]:
    """One type whose references are drawn from ``type_ids``."""
    members = st.builds(
        Member, maybe_names, type_ids, st.integers(0, 2**24 - 1), st.integers(0, 255)
    )
    enum32 = st.builds(
        lambda signed, name, size, values: Enum(
            name=name,
            size=size,
            signed=signed,
            values=tuple(EnumValue(n, v % 2**32 - (2**31 if signed else 0)) for n, v in values),
        ),
        st.booleans(),
        maybe_names,
        st.sampled_from([1, 2, 4, 8]),
        st.lists(st.tuples(names, u32), max_size=4),
    )
    enum64 = st.builds(
        lambda signed, name, values: Enum64(
            name=name,
            size=8,
            signed=signed,
            values=tuple(EnumValue(n, v - (2**63 if signed else 0)) for n, v in values),
        ),
        st.booleans(),
        maybe_names,
        st.lists(st.tuples(names, st.integers(0, 2**64 - 1)), max_size=4),
    )
    return st.one_of(
        ints(),
        st.builds(Pointer, name=st.just(""), target=type_ids),
        st.builds(Array, element=type_ids, index=type_ids, count=u32),
        st.builds(
            Struct, name=maybe_names, size=u32, members=st.lists(members, max_size=4).map(tuple)
        ),
        st.builds(
            Union, name=maybe_names, size=u32, members=st.lists(members, max_size=4).map(tuple)
        ),
        enum32,
        enum64,
        st.builds(Fwd, name=names, union=st.booleans()),
        st.builds(Typedef, name=names, target=type_ids),
        st.builds(Volatile, target=type_ids),
        st.builds(Const, target=type_ids),
        st.builds(Restrict, target=type_ids),
        st.builds(TypeTag, name=names, target=type_ids, attribute=st.booleans()),
        st.builds(Func, name=names, proto=type_ids, linkage=st.sampled_from(list(FuncLinkage))),
        st.builds(
            FuncProto,
            result=type_ids,
            params=st.lists(st.builds(Param, maybe_names, type_ids), max_size=4).map(tuple),
        ),
        st.builds(Var, name=names, type=type_ids, linkage=st.sampled_from(list(VarLinkage))),
        st.builds(
            Datasec,
            name=names,
            size=u32,
            vars=st.lists(st.builds(VarSecinfo, type_ids, u32, u32), max_size=3).map(tuple),
        ),
        st.builds(Float, name=names, size=st.sampled_from([2, 4, 8, 12, 16])),
        st.builds(
            DeclTag,
            name=names,
            target=type_ids,
            component_index=st.integers(-1, 3),
            attribute=st.booleans(),
        ),
    )


@st.composite
def type_graphs(draw: st.DrawFn, first_id: int = 1, max_types: int = 12) -> list[Type]:
    """Distinct types that may refer to each other (forward and backward) and to ``void``."""
    count = draw(st.integers(1, max_types))
    type_ids = st.integers(0, first_id + count - 1)
    return draw(st.lists(type_graph_element(type_ids), min_size=count, max_size=count, unique=True))
