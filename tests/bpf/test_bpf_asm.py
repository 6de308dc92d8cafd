"""The assembler and disassembler: every form, round trips, and error messages."""

from __future__ import annotations

import pytest
from bpf_strategies import any_instruction
from hypothesis import given
from hypothesis.strategies import lists, sampled_from

from pykex.bpf import (
    R0,
    R1,
    R2,
    R10,
    AssemblyError,
    AtomicOp,
    Instruction,
    Relocation,
    RelocationKind,
    add64,
    addr_space_cast,
    arsh32,
    assemble,
    atomic,
    atomic_add,
    atomic_cmpxchg,
    atomic_fetch_add,
    atomic_xchg,
    be16,
    bswap32,
    call_helper,
    call_kfunc,
    call_local,
    decode,
    disassemble,
    encode,
    exit,
    format_instruction,
    gotol,
    ja,
    jeq,
    jne32,
    jsgt,
    ld_abs,
    ld_func,
    ld_imm64,
    ld_ind,
    ld_ksym,
    ld_map_fd,
    ld_map_idx,
    ld_map_idx_value,
    ld_map_value,
    ldx,
    ldxs,
    le64,
    load_acquire,
    may_goto,
    mov32,
    mov64,
    movsx32,
    neg32,
    sdiv64,
    smod64,
    st,
    store_release,
    stx,
    sub32,
)


@given(any_instruction())
def test_disassembly_assembles_back(insn: Instruction) -> None:
    text = disassemble([insn])
    assert assemble(text) == [insn], text


@given(any_instruction())
def test_kernel_log_prefixes_are_accepted(insn: Instruction) -> None:
    assert assemble(disassemble([insn], slots=True)) == [insn]
    assert assemble(f"7: ({insn.opcode:02x}) {format_instruction(insn)}") == [insn]


FORMS = [
    ("r0 = 1", mov64(R0, 1)),
    ("w1 = 0xffffffff", mov32(R1, -1)),
    ("r2 += -4", add64(R2, -4)),
    ("w1 -= w2", sub32(R1, R2)),
    ("w1 s>>= 3", arsh32(R1, 3)),
    ("r1 s/= r2", sdiv64(R1, R2)),
    ("r1 s%= 10", smod64(R1, 10)),
    ("w0 = -w0", neg32(R0)),
    ("w0 = (s8)w1", movsx32(R0, R1, 8)),
    ("r0 = be16 r0", be16(R0)),
    ("r0 = le64 r0", le64(R0)),
    ("r0 = bswap32 r0", bswap32(R0)),
    ("r1 = addr_space_cast(r2, 0, 1)", addr_space_cast(R1, R2, 0, 1)),
    ("r0 = *(u32 *)(r1 +4)", ldx(4, R0, R1, 4)),
    ("w0 = *(u32 *)(r1 + 0x4)", ldx(4, R0, R1, 4)),  # llvm-objdump spelling
    ("r0 = *(s16 *)(r1 +2)", ldxs(2, R0, R1, 2)),
    ("*(u32 *)(r10 -4) = r0", stx(4, R10, -4, R0)),
    ("*(u64 *)(r10 -8) = -1", st(8, R10, -8, -1)),
    ("lock *(u64 *)(r0 +0) += r1", atomic_add(8, R0, 0, R1)),
    ("lock *(u32 *)(r0 +8) ^= r1", atomic(AtomicOp.XOR, 4, R0, 8, R1)),
    ("r1 = atomic_fetch_add((u64 *)(r2 +0), r1)", atomic_fetch_add(8, R2, 0, R1)),
    ("r1 = atomic64_fetch_add((u64 *)(r2 +0), r1)", atomic_fetch_add(8, R2, 0, R1)),
    ("r1 = atomic_xchg((u32 *)(r2 -8), r1)", atomic_xchg(4, R2, -8, R1)),
    ("r0 = atomic64_cmpxchg((u64 *)(r2 +0), r0, r1)", atomic_cmpxchg(8, R2, 0, R1)),
    ("r0 = load_acquire((u64 *)(r1 +0))", load_acquire(8, R0, R1, 0)),
    ("store_release((u8 *)(r1 +3), r2)", store_release(1, R1, 3, R2)),
    ("r1 = 0x1122334455667788 ll", ld_imm64(R1, 0x1122334455667788)),
    ("r1 = -1 ll", ld_imm64(R1, -1)),
    ("r1 = map[counts] ll", ld_map_fd(R1, "counts")),
    ("r1 = map[fd:5]", ld_map_fd(R1, 5)),
    ("r1 = map_value[data]+16 ll", ld_map_value(R1, "data", 16)),
    ("r1 = map_value[fd:3] ll", ld_map_value(R1, 3, 0)),
    ("r1 = map_idx[2] ll", ld_map_idx(R1, 2)),
    ("r1 = map_idx_value[2]+8 ll", ld_map_idx_value(R1, 2, 8)),
    ("r1 = ksym[bpf_prog_active] ll", ld_ksym(R1, "bpf_prog_active")),
    ("r1 = ksym[id:77] ll", ld_ksym(R1, 77)),
    ("r0 = *(u16 *)skb[12]", ld_abs(2, 12)),
    ("r0 = *(u8 *)skb[r1 + 4]", ld_ind(1, R1, 4)),
    ("r0 = *(u8 *)skb[r1 - 4]", ld_ind(1, R1, -4)),
    ("if r0 == 0 goto pc+3", jeq(R0, 0, 3)),
    ("if r1 s> r2 goto -1", jsgt(R1, R2, -1)),
    ("if w1 != 0xffffffff goto +2", jne32(R1, -1, 2)),
    ("goto pc-1", ja(-1)),
    ("gotol +70000", gotol(70000)),
    ("may_goto +3", may_goto(3)),
    ("call bpf_map_lookup_elem", call_helper(1)),
    ("call map_lookup_elem", call_helper(1)),
    ("call bpf_map_lookup_elem#1", call_helper(1)),
    ("call 1", call_helper(1)),
    ("call 9999", call_helper(9999)),
    ("call pc+5", call_local(5)),
    ("call kfunc:bpf_iter_num_new", call_kfunc("bpf_iter_num_new")),
    ("call kfunc:12345@2", call_kfunc(12345, 2)),
    ("exit", exit()),
]


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[t for t, _ in FORMS])
def test_assembles_each_form(text: str, expected: Instruction) -> None:
    assert assemble(text) == [expected]
    assert assemble(disassemble([expected])) == [expected]


EXAMPLE = """
    r0 = 0
    r1 = map[counts] ll        ; map fd, resolved by the loader
    *(u32 *)(r10 -4) = r0
    r2 = r10
    r2 += -4
    call bpf_map_lookup_elem   // or: call 1
    if r0 == 0 goto out
    lock *(u64 *)(r0 +0) += r1
out:
    exit
"""


def test_example_program() -> None:
    program = assemble(EXAMPLE, filename="example.s")
    assert program == [
        mov64(R0, 0),
        ld_map_fd(R1, "counts"),
        stx(4, R10, -4, R0),
        mov64(R2, R10),
        add64(R2, -4),
        call_helper("bpf_map_lookup_elem"),
        jeq(R0, 0, "out"),
        atomic_add(8, R0, 0, R1),
        exit().with_label("out"),
    ]
    assert program[1].source is not None
    assert (program[1].source.file, program[1].source.line) == ("example.s", 3)
    encoded = encode(program)
    assert encoded.relocations == (Relocation(1, 1, RelocationKind.MAP, "counts"),)
    assert encoded.symbols == {"out": 9}
    # the jump at slot 7 skips one slot to reach slot 9
    assert decode(encoded.code)[6] == jeq(R0, 0, 1)
    assert disassemble(program) == (
        "    r0 = 0\n"
        "    r1 = map[counts] ll\n"
        "    *(u32 *)(r10 -4) = r0\n"
        "    r2 = r10\n"
        "    r2 += -4\n"
        "    call bpf_map_lookup_elem#1\n"
        "    if r0 == 0 goto out\n"
        "    lock *(u64 *)(r0 +0) += r1\n"
        "out:\n"
        "    exit\n"
    )


def test_labels_calls_and_function_references() -> None:
    program = assemble(
        """
        main: r2 = func[callback] ll
              call helper_like
              call bpf_loop
              exit
        helper_like:
        alias:
              r0 = 0
              if r0 == 0 goto alias
              exit
        callback: r0 = 1
              exit
        """
    )
    assert program[0] == ld_func(R2, "callback").with_label("main")
    assert program[1] == call_local("helper_like")  # a label wins over helper names
    assert program[2] == call_helper("bpf_loop")
    assert program[4] == mov64(R0, 0).with_label("helper_like")
    assert program[5] == jeq(R0, 0, "helper_like")  # aliases resolve to the first label
    assert assemble(disassemble(program)) == program


def test_disassembly_annotates_source_lines() -> None:
    program = assemble("r0 = 0\nr0 += 1\nexit\n", filename="fw.py")
    text = disassemble(program, source=True)
    assert "; fw.py:1  r0 = 0\n" in text
    assert "; fw.py:2  r0 += 1\n" in text
    assert assemble(text) == program


ERRORS = [
    ("r0 = 0\nr11 = 1", 2, "there is no register r11"),
    ("r0 = 0x100000000", 1, "does not fit in a signed 32-bit field"),
    ("w1 += r2", 1, "mix 32-bit"),
    ("if r0 == 1 goto nowhere", 1, "undefined label 'nowhere'"),
    ("call nothing_known", 1, "neither a label nor a known helper"),
    ("call bpf_map_lookup_elem#2", 1, "helper #2 is bpf_map_update_elem"),
    ("frobnicate r0", 1, "not an eBPF instruction"),
    ("w1 = (s32)w2", 1, "sign-extending move width"),
    ("r0 = *(s64 *)(r1 +0)", 1, "sign-extending load of 8 bytes"),
    ("lock *(u8 *)(r1 +0) += r2", 1, "4- or 8-byte access"),
    ("r1 = atomic_fetch_add((u64 *)(r2 +0), r3)", 1, "old value returns"),
    ("r1 = atomic_cmpxchg((u64 *)(r2 +0), r0, r3)", 1, "cmpxchg compares"),
    ("r0 = *(u32 *)(w1 +0)", 1, "64-bit register"),
    ("r1 = *(u8 *)skb[4]", 1, "always load into r0"),
    ("r0 = be16 r1", 1, "same register"),
    ("r1 = map[counts]+4 ll", 1, "takes no offset"),
    ("r1 = map[7] ll", 1, "map name or fd:N"),
    ("a:\nr0 = 0\na:\nexit", 3, "label 'a' already defined on line 1"),
    ("r0 = 0\nend:", 2, "not followed by an instruction"),
    ("r1 = 0x10000000000000000 ll", 1, "does not fit in 64 bits"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS, ids=[m for _, _, m in ERRORS])
def test_assembly_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(AssemblyError, match=message) as caught:
        assemble(text)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: ")


def test_symbolized_disassembly_reassembles_to_the_same_bytes() -> None:
    program = [
        ld_func(R2, 4),  # slots 0-1, to slot 5
        jeq(R0, 0, 1),  # slot 2, to slot 4
        call_local(1),  # slot 3, to slot 5
        exit(),  # slot 4
        mov64(R0, 0).with_label("L4"),  # slot 5: a user label named like a generated one
        gotol(-2),  # slot 6, to slot 5
        exit(),
    ]
    text = disassemble(program, symbolize=True)
    for line in ("func[L4]", "goto L4_\n", "call L4\n", "L4_:\n    exit", "gotol L4\n"):
        assert line in text
    code = encode(program).code
    assert encode(assemble(text)).code == code
    assert encode(assemble(disassemble(code, symbolize=True))).code == code


TOKENS = ["r0", "w1", "r10", "r11", "=", "+=", "s>>=", "*(u32 *)", "(r1 +4)", "(", ")", ",",
          "ll", "if", "goto", "pc+1", "+3", "-1", "0x10", "call", "kfunc:", "map[", "]", "x:",
          "lock", "atomic_fetch_add(", "exit", "be16", "(s8)", "skb[", "#", ";", "\n", " "]


@given(lists(sampled_from(TOKENS), max_size=12).map(" ".join))
def test_bad_input_only_raises_assembly_errors(text: str) -> None:
    try:
        assemble(text)
    except AssemblyError as error:
        assert 1 <= error.line <= text.count("\n") + 1
