"""Label resolution, slot arithmetic and relocations of whole programs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as hst

from pykex.bpf import (
    R0,
    R1,
    R2,
    EncodingError,
    Instruction,
    Relocation,
    RelocationKind,
    SourceLocation,
    assemble,
    call_kfunc,
    call_local,
    decode,
    disassemble,
    encode,
    exit,
    gotol,
    ja,
    jeq,
    jlt32,
    ld_func,
    ld_imm64,
    ld_ksym,
    ld_map_fd,
    ld_map_value,
    may_goto,
    mov64,
)


def destination(code: bytes, slot: int) -> int:
    """Slot a jump/call at ``slot`` of encoded ``code`` leads to, read from the raw bytes."""
    insn = Instruction.decode(code, slot * 8)
    if insn.is_ld_imm64:
        offset = ((insn.imm & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
    elif insn.is_local_call or insn.is_gotol:
        offset = insn.imm
    else:
        offset = insn.off
    return slot + 1 + offset


def test_forward_and_backward_jumps_count_slots() -> None:
    program = [
        mov64(R0, 0).with_label("top"),  # slot 0
        ld_imm64(R1, 1 << 40),  # slots 1-2
        jeq(R0, 0, "out"),  # slot 3
        ld_imm64(R2, 7),  # slots 4-5
        may_goto("out"),  # slot 6
        jlt32(R0, 10, "top"),  # slot 7
        gotol("top"),  # slot 8
        exit().with_label("out"),  # slot 9
    ]
    encoded = encode(program)
    assert encoded.slots == (0, 1, 3, 4, 6, 7, 8, 9)
    assert encoded.symbols == {"top": 0, "out": 9}
    assert [destination(encoded.code, s) for s in (3, 6, 7, 8)] == [9, 9, 0, 0]
    raw = decode(encoded.code)
    assert raw[2].off == 5 and raw[4].off == 2 and raw[5].off == -8 and raw[6].imm == -9


def test_calls_and_function_addresses_resolve_to_subprograms() -> None:
    program = [
        ld_func(R2, "callback"),  # slots 0-1
        call_local("sub"),  # slot 2
        exit(),  # slot 3
        mov64(R0, 1).with_label("callback"),  # slot 4
        exit(),
        ld_func(R1, "callback").with_label("sub"),  # slots 6-7, a backward reference
        exit(),
    ]
    encoded = encode(program)
    assert [destination(encoded.code, s) for s in (0, 2, 6)] == [4, 6, 4]
    backward = Instruction.decode(encoded.code, 6 * 8)
    assert backward.imm == 0xFFFFFFFD  # -3 in the low word, the second word stays 0
    assert encoded.code[8 * 7 :][:8] == bytes(8)


def test_resolution_keeps_labels_for_disassembly() -> None:
    program = [jeq(R0, 0, "out"), mov64(R0, 1), exit().with_label("out")]
    assert "if r0 == 0 goto out" in disassemble(program)
    assert "if r0 == 0 goto pc+1" in disassemble(encode(program).code)


def test_relocations_list_maps_and_kernel_symbols() -> None:
    program = [
        ld_map_fd(R1, "counts"),
        ld_map_value(R2, "globals", 8),
        call_kfunc("bpf_iter_num_new"),
        ld_ksym(R1, "bpf_prog_active"),
        exit(),
    ]
    assert encode(program).relocations == (
        Relocation(0, 0, RelocationKind.MAP, "counts"),
        Relocation(1, 2, RelocationKind.MAP, "globals"),
        Relocation(2, 4, RelocationKind.KFUNC, "bpf_iter_num_new"),
        Relocation(3, 5, RelocationKind.KSYM, "bpf_prog_active"),
    )
    assert encode(program).relocations[1].byte_offset == 16


def test_source_lines_map_to_slots() -> None:
    here = SourceLocation("fw.py", 12, 4, "if ip.proto == 6:")
    program = [ld_imm64(R1, 5), jeq(R1, 6, 0).with_source(here), exit()]
    assert encode(program).lines == ((2, here),)


def test_jump_out_of_16_bit_range_is_an_error_but_gotol_reaches() -> None:
    filler = [mov64(R0, 0)] * 40000
    with pytest.raises(EncodingError, match=r"instruction 0: jump to 'far' is out of range"):
        encode([ja("far"), *filler, exit().with_label("far")])
    encoded = encode([gotol("far"), *filler, exit().with_label("far")])
    assert destination(encoded.code, 0) == 40001


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ([ja("missing"), exit()], "undefined label 'missing'"),
        ([exit().with_label("a"), exit().with_label("a")], "label 'a' already defined"),
        ([ja(1), ld_imm64(R1, 1), exit()], "does not start an instruction"),
        ([ja(5), exit()], "does not start an instruction"),
        ([call_local(-2), exit()], "does not start an instruction"),
        ([mov64(R0, 0).replace(target="x"), exit().with_label("x")], "neither jumps nor calls"),
        ([mov64(R0, 0).replace(map_ref="m"), exit()], "needs a 64-bit load of a map"),
        ([call_local(0).replace(ksym="f"), exit()], "needs a kfunc call or a BTF_ID load"),
        ([Instruction(0xB7, off=1), exit()], "instruction 0: field off must be 0"),
    ],
)
def test_encoding_errors(program: list[Instruction], message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        encode(program)


@hst.composite
def labelled_programs(draw: hst.DrawFn) -> list[Instruction]:
    """Straight-line code of 1- and 2-slot instructions with labelled jumps between them."""
    size = draw(hst.integers(2, 30))
    body = [
        ld_imm64(R1, draw(hst.integers(0, 1 << 40))) if draw(hst.booleans()) else mov64(R0, 1)
        for _ in range(size)
    ]
    labelled = sorted(draw(hst.sets(hst.integers(0, size - 1), min_size=1)))
    for index in labelled:
        body[index] = body[index].with_label(f"L{index}")
    for index in draw(hst.sets(hst.integers(0, size - 1))):
        kind = draw(hst.sampled_from([ja, gotol, may_goto, call_local, "jeq"]))
        target = f"L{draw(hst.sampled_from(labelled))}"
        insn = jeq(R0, 3, target) if kind == "jeq" else kind(target)
        body[index] = insn.with_label(body[index].label)
    return [*body, exit()]


@given(labelled_programs())
def test_random_programs_resolve_to_their_labels(program: list[Instruction]) -> None:
    encoded = encode(program)
    for insn, slot in zip(program, encoded.slots, strict=True):
        if insn.target is not None:
            assert destination(encoded.code, slot) == encoded.symbols[insn.target]
    assert assemble(disassemble(program)) == program
    assert b"".join(i.encode() for i in decode(encoded.code)) == encoded.code
