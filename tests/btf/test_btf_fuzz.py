"""Malformed input must raise BTFError (BTFFormatError with an offset), never crash inside."""

import contextlib
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pykex.btf import (
    BTFError,
    BTFFormatError,
    Builder,
    Composite,
    ExtInfo,
    FuncInfo,
    LineInfo,
    Spec,
    decode_ext,
    dump,
    encode_ext,
)

from .strategies import type_graphs


def exercise(data: bytes, base: Spec | None = None) -> None:
    """Parse and touch everything a user could ask of a spec."""
    spec = Spec.parse(data, base)
    for t in spec.types(include_base=False):
        dump([t], spec.type_by_id)
        if t.name:
            spec.find(t.name, t.kind)
        for helper in (spec.sizeof, spec.resolve):
            with contextlib.suppress(BTFError):
                helper(t)
        if isinstance(t, Composite):
            for m in t.members:
                with contextlib.suppress(BTFError):
                    spec.member(t, m.name)
    spec.kfuncs()


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    data = bytearray(Builder().emit() if draw(st.booleans()) else _sample())
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _sample() -> bytes:
    b = Builder()
    u32 = b.add_int("unsigned int", 4)
    lock = b.add_spin_lock()
    value = b.add_struct("value", 8, [])
    b.add_map_definition(map_type=2, key=u32, value=value, max_entries=3)
    b.add_enum("e", [("A", 1), ("B", -1)], signed=True)
    b.add_enum("e64", [("C", 1 << 40)], size=8)
    proto = b.add_func_proto(u32, [("x", lock)])
    b.add_decl_tag("bpf_kfunc", b.add_func("f", proto))
    b.add_typedef("loop", b.first_id + len(b.types()) + 1)
    b.add_typedef("loop2", b.first_id + len(b.types()) - 1)
    return b.emit()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=corrupted())
def test_corrupted_btf(data: bytes) -> None:
    try:
        exercise(data)
    except BTFFormatError as error:
        assert 0 <= error.offset <= len(data)
    except BTFError:
        pass


@settings(max_examples=100, deadline=None)
@given(types=type_graphs(), cut=st.integers(0, 10_000))
def test_truncated_btf(types: list, cut: int) -> None:
    b = Builder()
    for t in types:
        b.add(t)
    data = b.emit()
    truncated = data[: cut % (len(data) + 1)]
    try:
        exercise(truncated)
    except BTFFormatError as error:
        assert error.offset <= len(data)


@settings(max_examples=100, deadline=None)
@given(types=type_graphs(), data=st.data())
def test_random_split_btf_on_corrupted_base(types: list, data: st.DataObject) -> None:
    b = Builder()
    for t in types:
        b.add(t)
    base = Spec.parse(b.emit())
    split = bytearray(Builder(base=base).emit())
    split += data.draw(st.binary(max_size=64))
    struct.pack_into("<I", split, 12, len(split) - 24)  # type_len covers the random tail
    struct.pack_into("<I", split, 16, len(split) - 24)  # empty string section after it
    struct.pack_into("<I", split, 20, 0)
    with contextlib.suppress(BTFError):
        exercise(bytes(split), base)


def test_cyclic_typedefs_are_reported() -> None:
    spec = Spec.parse(_sample())
    loop = spec.find("loop")
    try:
        spec.sizeof(loop)
    except BTFError as error:
        assert "too deep or cyclic" in str(error)
    else:
        raise AssertionError("sizeof of a typedef cycle must fail")


def test_error_names_the_offset() -> None:
    data = bytearray(_sample())
    struct.pack_into("<I", data, 24 + 4, 31 << 24)  # first record: unknown kind 31
    try:
        Spec.parse(bytes(data))
    except BTFFormatError as error:
        assert error.offset == 24
        assert "unknown type kind 31" in str(error) and "0x18" in str(error)
    else:
        raise AssertionError("kind 31 must be rejected")


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_corrupted_ext(data: st.DataObject) -> None:
    b = Builder()
    ext = ExtInfo(
        {"xdp": [FuncInfo(0, 1), FuncInfo(4, 2)]},
        {"xdp": [LineInfo(0, "f.py", "a", 1, 2)], ".text": [LineInfo(1, "g.py", "b", 3, 4)]},
    )
    raw = bytearray(encode_ext(ext, b))
    spec = Spec.parse(b.emit())
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    with contextlib.suppress(BTFError):
        decode_ext(bytes(raw), spec)
