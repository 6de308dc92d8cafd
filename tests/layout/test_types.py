"""Layout types as Python objects: checks, messages, records, round trips."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykex.layout import (
    Array,
    Bytes,
    LayoutError,
    LayoutType,
    Struct,
    as_layout_type,
    be16,
    be32,
    bool_,
    i8,
    i16,
    make_struct,
    plain,
    u8,
    u16,
    u32,
    u64,
)

from .strategies import SCALARS, layout_types, struct_types, values_of


class Counter(Struct):
    packets: u64
    bytes: u64


class Key(Struct):
    addr: Array[u8, 16]
    port: be16


class Flow(Struct):
    key: Key
    size: u32  # a field may use a name the type itself answers to
    seen: bool


@pytest.mark.parametrize(
    ("t", "size", "signed", "order"),
    [
        (u8, 1, False, sys.byteorder),
        (u16, 2, False, sys.byteorder),
        (u64, 8, False, sys.byteorder),
        (i8, 1, True, sys.byteorder),
        (i16, 2, True, sys.byteorder),
        (be16, 2, False, "big"),
        (be32, 4, False, "big"),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_integer_types_describe_themselves(t: LayoutType, size: int, signed: bool,
                                           order: str) -> None:
    assert (t.kind, t.size, t.align, t.signed, t.byteorder) == ("int", size, size, signed, order)
    assert t.min == (-(1 << (8 * size - 1)) if signed else 0)
    assert t.max == (1 << (8 * size - (1 if signed else 0))) - 1


def test_byte_order_is_part_of_the_type() -> None:
    assert be16.encode(0x1234) == b"\x12\x34"
    assert u16.encode(0x1234) == (0x1234).to_bytes(2, sys.byteorder)
    assert be32.decode(b"\x0a\x00\x00\x01") == 0x0A000001
    assert i8.encode(-1) == b"\xff"


def test_calling_a_scalar_type_checks_and_returns_int() -> None:
    assert u8(200) == 200
    assert type(u8(200)) is int
    with pytest.raises(OverflowError, match=r"value must be u8 \(0\.\.255\), got 300"):
        u8(300)
    assert bool_(1) is True


def test_struct_layout_and_protocol() -> None:
    assert (Counter.kind, Counter.size, Counter.align) == ("struct", 16, 8)
    assert [(f.name, f.type, f.offset) for f in Counter.fields] == [
        ("packets", u64, 0),
        ("bytes", u64, 8),
    ]
    assert (Key.size, Key.align, Key.offset_of("port")) == (18, 2, 16)
    assert (Flow.offset_of("size"), Flow.offset_of("seen"), Flow.size) == (20, 24, 28)
    with pytest.raises(KeyError, match="Key has no field 'nope'"):
        Key.offset_of("nope")
    assert Array[u8, 16] is Array[u8, 16]
    assert (Array[Counter, 3].size, Array[Counter, 3].element, Array[Counter, 3].length) == (
        48, Counter, 3
    )
    assert (Bytes[6].kind, Bytes[6].size, Bytes[6].align) == ("bytes", 6, 1)
    assert as_layout_type(bool, "x") is bool_


def test_records_construct_compare_and_print() -> None:
    c = Counter(packets=1)
    assert (c.packets, c.bytes) == (1, 0)
    assert c == Counter(1, 0) == Counter.decode(bytes(c))
    assert c != Counter(packets=2)
    c.bytes += 100
    assert repr(c) == "Counter(packets=1, bytes=100)"
    assert {Counter(1, 2): "a"}[Counter(1, 2)] == "a"
    flow = Flow(key={"port": 80}, size=3, seen=True)
    assert flow.key == Key(port=80) and flow.key.addr == [0] * 16
    assert Flow.decode(bytes(flow)) == flow
    assert plain(flow)["key"]["port"] == 80
    assert Key(addr=bytes(range(16))).addr == list(range(16))


def test_struct_encoding_is_c_layout() -> None:
    key = Key(addr=b"\x20\x01" + bytes(14), port=443)
    assert Key.encode(key) == b"\x20\x01" + bytes(14) + b"\x01\xbb"
    assert Key.encode((bytes(16), 1)) == bytes(17) + b"\x01"
    assert Key.encode({"port": 2}) == bytes(17) + b"\x02"
    assert Counter.decode(Counter.encode(Counter(5, 6))) == Counter(5, 6)


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda: Key(port=70000), OverflowError, r"Key\.port must be be16 \(0\.\.65535\), got 7"),
        (lambda: Counter(packets=-1), OverflowError, r"Counter\.packets must be u64 \(0\.\.\d+\)"),
        (lambda: Counter(packets="1"), TypeError, r"Counter\.packets must be u64 \(an integer\)"),
        (lambda: Counter(packets=1.5), TypeError, r"must be u64 \(an integer\), got float"),
        (lambda: Key(addr=b"abc"), ValueError, r"Key\.addr must be Array\[u8, 16\] \(16 bytes\), "
                                              r"got bytes of length 3"),
        (lambda: Key(addr=[1] * 15), ValueError, r"\(16 elements\), got 15 of them"),
        (lambda: Key(addr=[0] * 15 + [256]), OverflowError, r"Key\.addr\[15\] must be u8"),
        (lambda: Flow(key=(bytes(16), -1)), OverflowError, r"Flow\.key\.port must be be16"),
        (lambda: Counter(1, 2, 3), TypeError, r"Counter takes at most 2 positional values, got 3"),
        (lambda: Counter(pkts=1), TypeError, r"Counter has no field 'pkts' \(fields: packets, "),
        (lambda: Counter(1, packets=1), TypeError, r"got field 'packets' twice"),
        (lambda: setattr(Counter(), "pkts", 1), AttributeError, r"Counter has no field 'pkts'"),
        (lambda: Counter.encode((1,)), TypeError, r"Counter must be Counter \(2 fields\)"),
        (lambda: Counter.encode({"x": 1}), TypeError, r"dict with unknown field 'x'"),
        (lambda: Counter.encode(7), TypeError, r"Counter \(a Counter, tuple or dict\), got 7"),
        (lambda: Counter.decode(bytes(15)), ValueError, r"Counter is 16 bytes, cannot decode 15"),
        (lambda: Bytes[4].encode(b"abc"), ValueError, r"Bytes\[4\] \(4 bytes\), got bytes of len"),
        (lambda: bool_.encode(2), TypeError, r"bool_ must be bool_ \(True, False, 0 or 1\), got 2"),
    ],
)
def test_bad_values_get_clear_errors(action, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        action()
    assert "struct.error" not in repr(caught.value)


def test_layout_errors_can_be_relabelled() -> None:
    with pytest.raises(LayoutError) as caught:
        Key.encode({"port": -1})
    relabelled = caught.value.relabel("key for map 'conns'", "Key")
    assert isinstance(relabelled, OverflowError)
    assert str(relabelled) == "key for map 'conns': Key.port must be be16 (0..65535), got -1"
    with pytest.raises(LayoutError) as caught:
        u32.check(b"abc")
    assert str(caught.value.relabel("key for map 'c'", "u32")) == (
        "key for map 'c' must be u32 (an integer), got bytes of length 3"
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: make_struct("A", [("x", int)]), "field 'x' of A: int has no fixed width"),
        (lambda: make_struct("A", [("_x", u8)]), "names starting with '_' are reserved"),
        (lambda: make_struct("A", [("x", str)]), "is not a layout type"),
        (lambda: Array[u8, 0], "positive integer"),
        (lambda: Bytes[-1], "positive integer"),
    ],
)
def test_bad_declarations_are_rejected(build, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        build()


def test_defaults_and_unknown_names_in_class_bodies_are_rejected() -> None:
    with pytest.raises(TypeError, match="cannot have defaults"):

        class WithDefault(Struct):
            x: u8 = 1

    with pytest.raises(TypeError, match="cannot evaluate annotation 'Missing'"):

        class Unresolved(Struct):
            x: Missing  # noqa: F821


def test_struct_inheritance_appends_fields() -> None:
    class Tagged(Counter):
        tag: u8

    assert [f.name for f in Tagged.fields] == ["packets", "bytes", "tag"]
    assert Tagged.size == 24


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_encode_decode_round_trip(data: st.DataObject) -> None:
    t = data.draw(layout_types())
    value = data.draw(values_of(t))
    encoded = t.encode(value)
    assert len(encoded) == t.size
    decoded = t.decode(encoded)
    assert decoded == t.check(value)
    assert t.encode(decoded) == encoded


@settings(max_examples=100, deadline=None)
@given(struct_types(), st.data())
def test_struct_values_survive_every_input_shape(t: LayoutType, data: st.DataObject) -> None:
    record = data.draw(values_of(t))
    as_tuple = tuple(getattr(record, f.name) for f in t.fields)
    as_dict = plain(record)
    assert t.encode(as_tuple) == t.encode(as_dict) == t.encode(record) == bytes(record)


@given(st.sampled_from(SCALARS), st.integers())
def test_integers_outside_the_range_overflow(t: LayoutType, number: int) -> None:
    if t.kind != "int":
        return
    if t.min <= number <= t.max:
        assert t.decode(t.encode(number)) == number
    else:
        with pytest.raises(OverflowError, match=f"must be {t.name}"):
            t.encode(number)
