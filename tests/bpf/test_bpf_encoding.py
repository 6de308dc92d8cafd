"""Encoding and decoding single instructions against the ISA specification."""

from __future__ import annotations

import struct

import pytest
from bpf_strategies import VALID_OPCODES, any_instruction
from hypothesis import given
from hypothesis import strategies as hst

from pykex.bpf import (
    FP,
    R0,
    R1,
    R2,
    R3,
    R10,
    EncodingError,
    Instruction,
    add32,
    add64,
    atomic_cmpxchg,
    atomic_fetch_add,
    be16,
    bswap64,
    call_helper,
    call_kfunc,
    decode,
    exit,
    gotol,
    jeq,
    jsgt32,
    ld_abs,
    ld_imm64,
    ld_ind,
    ld_map_fd,
    ld_map_value,
    ldx,
    ldxs,
    load_acquire,
    may_goto,
    mov32,
    mov64,
    movsx64,
    neg64,
    sdiv64,
    smod32,
    st,
    store_release,
    stx,
)

# (instruction, little-endian bytes): bytes worked out by hand from the ISA tables.
KNOWN_ENCODINGS = [
    (add64(R1, 0x11223344), "0701000044332211"),  # the specification's own example
    (add32(R1, R2), "0c21000000000000"),
    (mov64(R0, -1), "b7000000ffffffff"),
    (mov32(R0, 0xFFFFFFFF), "b4000000ffffffff"),
    (neg64(R3), "8703000000000000"),
    (sdiv64(R1, R2), "3f21010000000000"),
    (smod32(R1, 7), "9401010007000000"),
    (movsx64(R0, R1, 16), "bf10100000000000"),
    (be16(R0), "dc00000010000000"),
    (bswap64(R2), "d702000040000000"),
    (ldx(4, R0, R1, 4), "6110040000000000"),
    (ldxs(2, R0, R1, -2), "8910feff00000000"),
    (st(4, R10, -4, 7), "620afcff07000000"),
    (stx(8, FP, -8, R1), "7b1af8ff00000000"),
    (atomic_fetch_add(8, R2, 0, R1), "db12000001000000"),
    (atomic_cmpxchg(4, R2, 8, R3), "c3320800f1000000"),
    (load_acquire(8, R0, R1, 0), "db10000000010000"),
    (store_release(1, R1, 0, R2), "d321000010010000"),
    (ld_imm64(R1, 0x1122334455667788), "1801000088776655" "0000000044332211"),
    (ld_map_value(R1, 5, 16), "1821000005000000" "0000000010000000"),
    (ld_abs(2, 12), "280000000c000000"),
    (ld_ind(1, R1, 3), "5010000003000000"),
    (jeq(R0, 0, 3), "1500030000000000"),
    (jsgt32(R1, R2, -1), "6e21ffff00000000"),
    (gotol(70000), "0600000070110100"),
    (may_goto(2), "e500020000000000"),
    (call_helper("bpf_map_lookup_elem"), "8500000001000000"),
    (call_kfunc(1234, 2), "85200200d2040000"),
    (exit(), "9500000000000000"),
]


@pytest.mark.parametrize(("insn", "hexbytes"), KNOWN_ENCODINGS, ids=lambda v: str(v)[:40])
def test_known_encodings(insn: Instruction, hexbytes: str) -> None:
    assert insn.encode().hex() == hexbytes
    assert decode(bytes.fromhex(hexbytes)) == [insn.replace(map_ref=None)]


@given(any_instruction())
def test_encode_decode_round_trip(insn: Instruction) -> None:
    data = insn.encode()
    assert len(data) == 8 * insn.slots
    assert Instruction.decode(data) == insn
    assert decode(data)[0].encode() == data


@given(hst.binary(min_size=8, max_size=8), hst.booleans())
def test_decode_accepts_exactly_valid_bytes(data: bytes, wide: bool) -> None:
    if wide:
        data = data + bytes(8)
    try:
        insns = decode(data)
    except EncodingError:
        return
    assert b"".join(i.encode() for i in insns) == data


def _any_field_combination_decodes(opcode: int) -> bool:
    for dst in (0, 1):
        for src in (0, 1, 2, 4):
            for off in (0, 1, 8, 16, 32):
                for imm in (0, 1, 16, 32, 64, 0x100, 0x110, 0xE1, 0xF1, 1 << 16):
                    word = struct.pack("<BBhi", opcode, (src << 4) | dst, off, imm)
                    try:
                        decode(word + bytes(8) if opcode == 0x18 else word)
                    except EncodingError:
                        continue
                    return True
    return False


def test_decoder_accepts_exactly_the_isa_opcodes() -> None:
    accepted = {op for op in range(256) if _any_field_combination_decodes(op)}
    assert sorted(hex(op) for op in accepted - VALID_OPCODES) == []
    assert sorted(hex(op) for op in VALID_OPCODES - accepted) == []


INVALID = [
    ("0701000100000000", "field off must be 0"),  # ALU64 ADD K with off
    ("0f21000001000000", "field imm must be 0"),  # ALU64 ADD X with imm
    ("b70b000000000000", "invalid register r11"),
    ("bfb0000000000000", "invalid register r11"),
    ("df00000010000000", "no big-endian variant"),  # ALU64 END with TO_BE
    ("d400000008000000", "width must be 16, 32 or 64"),
    ("8f10000000000000", "NEG takes no source"),
    ("bc10200000000000", "sign-extending move width"),  # 32-bit movsx from s32
    ("3f21020000000000", "division offset"),
    ("e400000000000000", "unknown ALU operation"),
    ("f500000000000000", "unknown jump operation"),
    ("8600000001000000", "exists only in the JMP class"),  # JMP32 CALL
    ("8d01000000000000", "takes no source register"),  # callx
    ("8530000000000000", "unknown call kind"),
    ("8500010001000000", "field off must be 0"),  # helper call with off
    ("0500000001000000", "field imm must be 0"),  # ja with imm
    ("0600010000000000", "field off must be 0"),  # gotol with off
    ("e500000001000000", "field imm must be 0"),  # may_goto with imm
    ("9501000000000000", "field dst must be 0"),
    ("1510000000000000", "field src must be 0"),  # JEQ K with src
    ("9900000000000000", "sign-extending load of 8 bytes"),
    ("a100000000000000", "LDX supports only"),
    ("6a10000000000000", "field src must be 0"),  # ST with src
    ("c200000000000000", "ST supports only"),
    ("d321000000000000", "needs a 4- or 8-byte access"),  # atomic add on u8
    ("db21000002000000", "unknown atomic operation"),
    ("0000000000000000", "immediate loads exist only as 64-bit"),
    ("3800000000000000", "legacy packet loads support only"),
    ("2001000000000000", "field dst must be 0"),
    ("1870000000000000" "0000000000000000", "unknown 64-bit load kind"),
    ("1811000005000000" "0000000001000000", "must have 0 in its second imm"),
    ("1801000000000000" "0100000000000000", "second slot of the 64-bit load"),
    ("1801000000000000", "missing its second slot"),
    ("95000000000000", "not a multiple of 8"),
]


@pytest.mark.parametrize(("hexbytes", "message"), INVALID, ids=[m for _, m in INVALID])
def test_decode_rejects_invalid_encodings(hexbytes: str, message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        decode(bytes.fromhex(hexbytes))


def test_instruction_fields_are_range_checked() -> None:
    with pytest.raises(EncodingError, match="16-bit"):
        Instruction(0x05, off=1 << 15)
    with pytest.raises(EncodingError, match="32-bit"):
        Instruction(0xB7, imm=1 << 31)
    with pytest.raises(EncodingError, match="4 bits"):
        Instruction(0xBF, dst=16)
    with pytest.raises(TypeError, match="must be an int"):
        Instruction(0xB7, imm="1")  # type: ignore[arg-type]


def test_wide_immediates_normalise_to_signed() -> None:
    assert ld_imm64(R1, 0xFFFFFFFFFFFFFFFF) == ld_imm64(R1, -1)
    assert ld_imm64(R1, 1 << 63).imm == -(1 << 63)


def test_dsl_refuses_ambiguous_operands() -> None:
    with pytest.raises(ValueError, match="ld_imm64"):
        mov64(R0, 0xFFFFFFFF)  # would be sign-extended to -1
    with pytest.raises(TypeError, match="register"):
        mov64(0, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no eBPF access size of 3"):
        ldx(3, R0, R1)
    with pytest.raises(KeyError, match="unknown eBPF helper"):
        call_helper("bpf_does_not_exist")


def test_map_loads_carry_their_name_without_changing_encoding() -> None:
    named = ld_map_fd(R1, "counts")
    assert named.map_ref == "counts"
    assert named.encode() == ld_map_fd(R1, 0).encode()
