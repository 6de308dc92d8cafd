"""Malformed objects: the reader explains, it never crashes."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pykex.elf import ELFFormatError, read_object, write_object

from .c_objects import CALLS_AND_GLOBALS, compile_c
from .test_elf_roundtrip import sample_object

SEED_OBJECT = write_object(sample_object())


def _read_or_explain(data: bytes) -> None:
    try:
        read_object(data)
    except ELFFormatError as error:
        assert str(error)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(SEED_OBJECT) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    )
)
def test_mutated_bytes(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(SEED_OBJECT)
    for position, value in mutations:
        data[position] = value
    _read_or_explain(bytes(data))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(SEED_OBJECT) - 1))
def test_truncated(length: int) -> None:
    _read_or_explain(SEED_OBJECT[:length])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 1 << 20),
    st.sampled_from([0, 4, 8, 16, 20, 24, 32, 40]),
    st.integers(0, 63),
)
def test_mutated_section_headers(value: int, field: int, section: int) -> None:
    data = bytearray(SEED_OBJECT)
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    (count,) = struct.unpack_from("<H", data, 0x3C)
    at = shoff + (section % count) * 64 + field
    struct.pack_into("<I", data, at, value & 0xFFFFFFFF)
    _read_or_explain(bytes(data))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not an ELF"),
        (b"\x7fELF" + bytes(60), "64-bit"),
        (SEED_OBJECT[:18] + b"\x3e\x00" + SEED_OBJECT[20:], "EM_BPF"),
        (SEED_OBJECT[:5] + b"\x02" + SEED_OBJECT[6:], "big-endian"),
    ],
    ids=["empty", "elf32", "x86-64", "big-endian"],
)
def test_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(ELFFormatError, match=reason):
        read_object(data)


def test_mutated_clang_object(tmp_path: Path) -> None:
    seed = compile_c(CALLS_AND_GLOBALS, tmp_path)
    step = max(1, len(seed) // 400)
    for position in range(0, len(seed), step):
        for value in (0x00, 0xFF, 0x7F):
            data = bytearray(seed)
            data[position] = value
            _read_or_explain(bytes(data))
