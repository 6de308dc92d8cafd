"""Layouts and encodings compared with what gcc does for the same C structs.

Each test writes a C file that declares the structs, prints ``sizeof``,
``_Alignof`` and every ``offsetof``, then fills an object field by field and
prints its bytes; the numbers and bytes must equal pykex's.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pykex.layout import (
    Array,
    LayoutType,
    Struct,
    StructType,
    be16,
    bool_,
    i8,
    i64,
    u8,
    u16,
    u32,
    u64,
)

from .strategies import struct_types, values_of

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def c_declaration(t: LayoutType, name: str) -> str:
    dims = []
    while t.kind == "array":
        dims.append(t.length)
        t = t.element
    if t.kind == "bytes":
        base = "unsigned char"
        dims.append(t.length)
    elif t.kind == "int":
        base = f"{'' if t.signed else 'u'}int{8 * t.size}_t"
    elif t.kind == "bool":
        base = "_Bool"
    else:
        base = f"struct {t.__name__}"
    return base + f" {name}" + "".join(f"[{d}]" for d in dims)


def struct_order(types: list[StructType]) -> list[StructType]:
    """Every struct the given ones use, each after the structs it contains."""
    ordered: list[StructType] = []

    def visit(t: LayoutType) -> None:
        while t.kind == "array":
            t = t.element
        if t.kind == "struct" and t not in ordered:
            for f in t.fields:
                visit(f.type)
            ordered.append(t)

    for t in types:
        visit(t)
    return ordered


def c_definition(t: StructType) -> str:
    members = "".join(f"    {c_declaration(f.type, f.name)};\n" for f in t.fields)
    packed = " __attribute__((packed))" if t.packed else ""
    return f"struct {t.__name__} {{\n{members}}}{packed};\n"


def c_assignments(t: LayoutType, value: Any, lvalue: str) -> list[str]:
    """C statements storing ``value`` into ``lvalue`` one scalar at a time."""
    if t.kind == "struct":
        return [
            line
            for f in t.fields
            for line in c_assignments(f.type, getattr(value, f.name), f"{lvalue}.{f.name}")
        ]
    if t.kind == "array":
        return [
            line
            for i, item in enumerate(value)
            for line in c_assignments(t.element, item, f"{lvalue}[{i}]")
        ]
    if t.kind == "bytes":
        return [f"{lvalue}[{i}] = {b};" for i, b in enumerate(value)]
    if t.kind == "bool":
        return [f"{lvalue} = {int(value)};"]
    # The bit pattern the C object must hold: network-order types store
    # their bytes big-endian, which on this host reads as the swapped value.
    raw = value.to_bytes(t.size, t.byteorder, signed=t.signed)
    pattern = int.from_bytes(raw, "little")
    return [f"{lvalue} = (uint64_t){pattern:#x}ULL;"]


def run_c(structs: list[StructType], samples: list[tuple[StructType, Any]], tmp: Path) -> list[str]:
    lines = [
        "#include <stdio.h>",
        "#include <stdint.h>",
        "#include <stddef.h>",
        "#include <string.h>",
    ]
    lines += [c_definition(t) for t in struct_order(structs)]
    lines.append("static void dump(const void *p, size_t n) {")
    lines.append("    const unsigned char *bytes = p;")
    lines.append("    for (size_t i = 0; i < n; i++) printf(\"%02x\", bytes[i]);")
    lines.append("    printf(\"\\n\");\n}")
    lines.append("int main(void) {")
    for t in structs:
        name = t.__name__
        lines.append(
            f'    printf("{name} %zu %zu\\n", sizeof(struct {name}), _Alignof(struct {name}));'
        )
        for f in t.fields:
            lines.append(
                f'    printf("{name}.{f.name} %zu\\n", offsetof(struct {name}, {f.name}));'
            )
    for i, (t, value) in enumerate(samples):
        lines.append(f"    {{ struct {t.__name__} v{i}; memset(&v{i}, 0, sizeof v{i});")
        lines += [f"      {line}" for line in c_assignments(t, value, f"v{i}")]
        lines.append(f"      dump(&v{i}, sizeof v{i}); }}")
    lines.append("    return 0;\n}")
    source = tmp / "layout.c"
    source.write_text("\n".join(lines) + "\n")
    binary = tmp / "layout"
    subprocess.run(
        ["gcc", "-std=gnu11", "-Wall", "-Werror", "-Wno-overflow", "-o", binary, source],
        check=True,
        capture_output=True,
    )
    return subprocess.run([binary], check=True, capture_output=True, text=True).stdout.split("\n")


def expected_lines(structs: list[StructType], samples: list[tuple[StructType, Any]]) -> list[str]:
    lines = []
    for t in structs:
        lines.append(f"{t.__name__} {t.size} {t.align}")
        lines += [f"{t.__name__}.{f.name} {f.offset}" for f in t.fields]
    lines += [t.encode(value).hex() for t, value in samples]
    return [*lines, ""]


class Counter(Struct):
    packets: u64
    bytes: u64


class Key(Struct):
    addr: Array[u8, 16]
    port: be16


class Mixed(Struct):
    flag: bool
    wide: u64
    small: i8
    key: Key
    pair: Array[Counter, 2]
    tail: u16


class Header(Struct, packed=True):
    kind: u8
    length: u32
    stamp: i64


class HoldsPacked(Struct):
    lead: u8
    header: Header
    end: u32


class Grid(Struct):
    cells: Array[Array[i8, 3], 2]
    id: u32
    on: bool_


HAND_WRITTEN = [Counter, Key, Mixed, Header, HoldsPacked, Grid]


def test_hand_written_structs_match_gcc(tmp_path: Path) -> None:
    samples = [
        (Counter, Counter(packets=2**64 - 1, bytes=7)),
        (Key, Key(addr=bytes(range(16)), port=0x1F90)),
        (Mixed, Mixed(True, -1 & 0xFFFF_FFFF_FFFF, -128, Key(port=1), [(1, 2), (3, 4)], 9)),
        (Header, Header(kind=1, length=0xDEADBEEF, stamp=-2)),
        (HoldsPacked, HoldsPacked(lead=1, header=(2, 3, 4), end=5)),
        (Grid, Grid(cells=[[1, -2, 3], [-4, 5, -6]], id=77, on=True)),
    ]
    assert run_c(HAND_WRITTEN, samples, tmp_path) == expected_lines(HAND_WRITTEN, samples)


def test_known_layouts() -> None:
    # Spelled out so a reader sees the C rules at work.
    assert (Key.size, Key.align, Key.offset_of("port")) == (18, 2, 16)
    assert [f.offset for f in Mixed.fields] == [0, 8, 16, 18, 40, 72]
    assert (Mixed.size, Mixed.align) == (80, 8)
    assert (Header.size, Header.align) == (13, 1)
    assert (HoldsPacked.offset_of("header"), HoldsPacked.offset_of("end"), HoldsPacked.size) == (
        1, 16, 20
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generated_structs_match_gcc(tmp_path_factory: pytest.TempPathFactory,
                                     data: st.DataObject) -> None:
    structs = data.draw(st.lists(struct_types(), min_size=1, max_size=8))
    samples = [(t, data.draw(values_of(t))) for t in structs]
    tmp = tmp_path_factory.mktemp("gcc")
    assert run_c(structs, samples, tmp) == expected_lines(structs, samples)
