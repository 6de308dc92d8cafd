""".BTF.ext encoding and the func/line info arrays BPF_PROG_LOAD takes."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykex.btf import (
    FUNC_INFO_REC_SIZE,
    LINE_INFO_REC_SIZE,
    BTFError,
    BTFFormatError,
    Builder,
    ExtInfo,
    FuncInfo,
    LineInfo,
    Spec,
    decode_ext,
    encode_ext,
    kernel_func_info,
    kernel_line_info,
)
from pykex.btf.ext import EXT_HEADER_SIZE
from pykex.kernel import Program, ProgType, VerifierError, load_btf

texts = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=20)
line_infos = st.builds(
    LineInfo, st.integers(0, 2**28), texts, texts, st.integers(0, 2**22 - 1), st.integers(0, 1023)
)
func_infos = st.builds(FuncInfo, st.integers(0, 2**28), st.integers(0, 2**32 - 1))
sections = st.sampled_from(["xdp", ".text", "tc/ingress", "tracepoint/sched/sched_switch"])


@settings(max_examples=100, deadline=None)
@given(
    func_info=st.dictionaries(sections, st.lists(func_infos, min_size=1, max_size=4), max_size=3),
    line_info=st.dictionaries(sections, st.lists(line_infos, min_size=1, max_size=4), max_size=3),
    byteorder=st.sampled_from(["little", "big"]),
)
def test_round_trip(
    func_info: dict[str, list[FuncInfo]], line_info: dict[str, list[LineInfo]], byteorder: str
) -> None:
    ext = ExtInfo(func_info, line_info)
    b = Builder(byteorder=byteorder)
    encoded = encode_ext(ext, b)
    assert decode_ext(encoded, Spec.parse(b.emit())) == ext


def test_elf_section_counts_bytes() -> None:
    b = Builder()
    ext = ExtInfo(
        {"xdp": [FuncInfo(0, 7), FuncInfo(5, 9)]},
        {"xdp": [LineInfo(3, "a.py", "x = 1", 12, 4)]},
    )
    data = encode_ext(ext, b)
    func_off, func_len, line_off, line_len = struct.unpack_from("<IIII", data, 8)
    func_section = data[EXT_HEADER_SIZE + func_off : EXT_HEADER_SIZE + func_off + func_len]
    rec_size, name_off, count = struct.unpack_from("<III", func_section)
    assert (rec_size, count) == (FUNC_INFO_REC_SIZE, 2)
    assert b.add_string("xdp") == name_off
    assert struct.unpack_from("<IIII", func_section, 12) == (0, 7, 5 * 8, 9)
    line_section = data[EXT_HEADER_SIZE + line_off : EXT_HEADER_SIZE + line_off + line_len]
    rec_size, _, count = struct.unpack_from("<III", line_section)
    assert (rec_size, count) == (LINE_INFO_REC_SIZE, 1)
    insn_off, file_off, text_off, line_col = struct.unpack_from("<IIII", line_section, 12)
    assert insn_off == 3 * 8
    assert (file_off, text_off) == (b.add_string("a.py"), b.add_string("x = 1"))
    assert line_col == 12 << 10 | 4


def test_syscall_arrays_count_instructions() -> None:
    b = Builder()
    funcs = kernel_func_info([FuncInfo(10, 3), FuncInfo(14, 4)], start=10)
    assert funcs == struct.pack("=IIII", 0, 3, 4, 4)
    lines = kernel_line_info([LineInfo(12, "f.py", "y", 2, 1)], b, start=10)
    assert lines == struct.pack("=IIII", 2, b.add_string("f.py"), b.add_string("y"), 2 << 10 | 1)
    with pytest.raises(BTFError, match="before the program start"):
        kernel_func_info([FuncInfo(3, 1)], start=4)


def test_line_and_column_limits() -> None:
    with pytest.raises(BTFError, match="do not fit"):
        _ = LineInfo(0, "f", "", 1 << 22, 0).line_col
    with pytest.raises(BTFError, match="do not fit"):
        _ = LineInfo(0, "f", "", 1, 1024).line_col


def test_decode_rejects_unaligned_instruction_offsets() -> None:
    b = Builder()
    data = bytearray(encode_ext(ExtInfo({"xdp": [FuncInfo(1, 1)]}), b))
    func_off = struct.unpack_from("<I", data, 8)[0]
    struct.pack_into("<I", data, EXT_HEADER_SIZE + func_off + 12, 4)
    with pytest.raises(BTFFormatError, match="not a multiple of 8"):
        decode_ext(bytes(data), Spec.parse(b.emit()))


def insn(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", opcode, dst | src << 4, off, imm)


# 0: call subprog at 3    1: r0 = 2    2: exit    3: r0 = 0    4: exit
TWO_FUNCTIONS = insn(0x85, src=1, imm=2) + insn(0xB7, imm=2) + insn(0x95) + insn(0xB7) + insn(0x95)


def two_function_btf() -> tuple[Builder, int, int]:
    b = Builder()
    proto = b.add_func_proto(b.add_int("int", 4, signed=True), [])
    return b, b.add_func("main", proto), b.add_func("sub", proto)


def lines(starts: list[int]) -> list[LineInfo]:
    return [LineInfo(i, "prog.py", f"line {i}", i + 1, 0) for i in starts]


@pytest.mark.kernel
def test_kernel_accepts_func_and_line_info() -> None:
    b, main, sub = two_function_btf()
    func_info = kernel_func_info([FuncInfo(0, main), FuncInfo(3, sub)])
    line_info = kernel_line_info(lines([0, 1, 3]), b)
    with (
        load_btf(b.emit()) as btf,
        Program.load(
            ProgType.XDP,
            TWO_FUNCTIONS,
            name="btf_ext",
            btf_fd=int(btf),
            func_info=func_info,
            line_info=line_info,
            log_level=2,
        ) as prog,
    ):
        assert prog.test_run(bytes(64)).retval == 2
        # The verifier annotates its log with our source lines.
        assert "; line 3 @ prog.py:4" in prog.verifier_log


@pytest.mark.kernel
def test_kernel_rejects_byte_offsets_in_func_info() -> None:
    b, main, sub = two_function_btf()
    # What the ELF section stores (bytes), wrongly passed to the syscall.
    byte_offsets = struct.pack("=IIII", 0, main, 3 * 8, sub)
    with load_btf(b.emit()) as btf, pytest.raises(VerifierError) as caught:
        Program.load(ProgType.XDP, TWO_FUNCTIONS, btf_fd=int(btf), func_info=byte_offsets)
    assert "func_info" in caught.value.log
