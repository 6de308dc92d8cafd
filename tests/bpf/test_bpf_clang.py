"""Independent check against clang: decode what clang emits, re-encode it byte for byte,
and compare the disassembly with llvm-objdump's, instruction by instruction."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pykex.bpf import Instruction, decode, format_instruction

SAMPLE = Path(__file__).parent / "data" / "clang_sample.c"
TOOLS = ("clang", "llvm-objdump", "llvm-objcopy")

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS), reason="clang/llvm tools not installed"
)


def _compile(tmp_path: Path) -> Path:
    """Compile the sample for the newest CPU version clang knows (v4, else v3)."""
    obj = tmp_path / "sample.o"
    for cpu, defines in (("v4", ["-DCPU_V4"]), ("v3", [])):
        result = subprocess.run(
            ["clang", "-O2", "-target", "bpf", f"-mcpu={cpu}", *defines, "-c", str(SAMPLE),
             "-o", str(obj)],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            return obj
        if "unknown target CPU" not in result.stderr:
            pytest.fail(result.stderr)
    pytest.fail("clang knows neither -mcpu=v4 nor -mcpu=v3")


def _objdump(obj: Path) -> dict[str, list[tuple[int, str, str]]]:
    """section -> [(slot, hex bytes, text)] as llvm-objdump prints them."""
    listing = subprocess.run(
        ["llvm-objdump", "-d", "--no-show-raw-insn", str(obj)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    raw = subprocess.run(
        ["llvm-objdump", "-d", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    sections: dict[str, list[tuple[int, str, str]]] = {}
    current: list[tuple[int, str, str]] = []
    for text_line, raw_line in zip(listing.splitlines(), raw.splitlines(), strict=True):
        if header := re.match(r"Disassembly of section (\S+):", text_line):
            current = sections.setdefault(header[1], [])
        elif insn := re.match(r"\s*(\d+):\s*(.*)", text_line):
            hexbytes = re.match(r"\s*\d+:\s*((?:[0-9a-f]{2}[ \t])+)", raw_line)
            assert hexbytes is not None, raw_line
            current.append((int(insn[1]), re.sub(r"\s", "", hexbytes[1]), insn[2].strip()))
    return sections


def _shape(text: str) -> str:
    """A coarse category of an instruction's text, shared by both disassemblers."""
    text = re.sub(r"\s+", " ", text)
    if text == "exit":
        return "exit"
    if text.startswith("call"):
        return "call"
    if text.startswith("if "):
        return f"jump{32 if text.startswith('if w') else 64}"
    if text.startswith(("goto", "gotol", "may_goto")):
        return "goto"
    if text.endswith(" ll"):
        return "ld_imm64"
    if "lock " in text or "xchg" in text or "atomic" in text or "_acquire" in text:
        return "atomic"
    if text.startswith("*("):
        return "store"
    if re.match(r"[rw]\d+ = \*\(", text):
        return "load"
    if re.search(r"= (be|le|bswap)\d+", text):
        return "endian"
    return f"alu{32 if text.startswith('w') else 64}"


def test_clang_output_decodes_and_reencodes(tmp_path: Path) -> None:
    obj = _compile(tmp_path)
    sections = _objdump(obj)
    assert {".text", "xdp"} <= set(sections)
    checked = 0
    for name, listing in sections.items():
        dumped = tmp_path / f"{name.strip('.')}.bin"
        subprocess.run(
            ["llvm-objcopy", f"--dump-section={name}={dumped}", str(obj)], check=True
        )
        code = dumped.read_bytes()
        instructions = decode(code)
        assert b"".join(insn.encode() for insn in instructions) == code
        slot = 0
        assert len(instructions) == len(listing)
        for insn, (llvm_slot, llvm_hex, llvm_text) in zip(instructions, listing, strict=True):
            assert slot == llvm_slot
            assert insn.encode().hex() == llvm_hex
            ours = format_instruction(insn)
            assert _shape(ours) == _shape(llvm_text), (name, slot, ours, llvm_text)
            slot += insn.slots
            checked += 1
    assert checked > 50


def test_clang_output_covers_the_interesting_forms(tmp_path: Path) -> None:
    """Guard against the sample silently losing the forms the comparison is meant to cover."""
    obj = _compile(tmp_path)
    dumped = tmp_path / "xdp.bin"
    subprocess.run(["llvm-objcopy", f"--dump-section=xdp={dumped}", str(obj)], check=True)
    instructions: list[Instruction] = decode(dumped.read_bytes())
    shapes = {_shape(format_instruction(insn)) for insn in instructions}
    assert {"atomic", "ld_imm64", "call", "jump32", "jump64", "load", "store"} <= shapes
