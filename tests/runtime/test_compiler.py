"""The compiler driver: stages on demand and the output formats."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from pykex.compiler import OUTPUT_FORMATS, Compilation
from pykex.elf.reader import read_object
from pykex.kernel.fs import ensure_bpffs

from . import extensions as fx
from .test_source import FIREWALL, line_of


@pytest.fixture
def firewall(tmp_path: Path) -> Compilation:
    path = tmp_path / "fw.py"
    path.write_text(FIREWALL)
    return Compilation(path)


def test_stages_are_computed_once_and_in_order(firewall: Compilation) -> None:
    assert firewall.source == FIREWALL
    assert firewall.compiled is firewall.compiled
    assert [p.name for p in firewall.ir.programs] == ["firewall"]
    # Passes work on a copy: the front end's IR stays as it was.
    assert firewall.optimized_ir is not firewall.ir
    assert firewall.optimized_ir.programs[0].function is not firewall.ir.programs[0].function


def test_source_given_in_memory(tmp_path: Path) -> None:
    compilation = Compilation(tmp_path / "never_written.py", source=FIREWALL)
    assert compilation.compiled.file == str(tmp_path / "never_written.py")


def test_ir_output_is_the_optimised_ir(firewall: Compilation) -> None:
    text = firewall.output("ir")
    assert text.startswith(f"; module {firewall.path}\n")
    assert "function firewall (frame " in text and "map stats: PERCPU_ARRAY" in text
    assert text == str(firewall.optimized_ir) + "\n"


def test_optimisation_levels(tmp_path: Path) -> None:
    path = tmp_path / "fw.py"
    path.write_text(FIREWALL)
    plain, optimised = Compilation(path, opt_level=0), Compilation(path, opt_level=1)
    assert plain.output("ir") == str(plain.ir) + "\n"
    assert optimised.output("ir") != plain.output("ir")  # the O1 passes changed something
    assert optimised.stats[0].instructions <= plain.stats[0].instructions
    with pytest.raises(ValueError, match="unknown optimisation level 3"):
        Compilation(path, opt_level=3)


def test_asm_shows_source_lines(firewall: Compilation) -> None:
    text = firewall.output("asm")
    assert text.startswith("; program firewall (xdp, section xdp, on_error=2)\n")
    assert f"; {firewall.path}:{line_of('c.packets += 1')}  c.packets += 1\n" in text
    assert "call bpf_map_lookup_elem" in text


def test_stats(firewall: Compilation) -> None:
    [stats] = firewall.stats
    program = firewall.compiled.program("firewall")
    assert stats.instructions == len(program.encode().code) // 8
    assert (stats.stack_bytes, stats.frame_bytes) == (program.stack_size, program.frame_size)
    lines = firewall.output("stats").splitlines()
    assert lines[0].split() == ["program", "kind", "instructions", "stack", "bytes", "frame",
                                "bytes"]
    assert lines[1].split() == ["firewall", "xdp", str(stats.instructions),
                                str(stats.stack_bytes), str(stats.frame_bytes)]


def test_elf_reads_back(firewall: Compilation) -> None:
    data = firewall.output("elf")
    assert isinstance(data, bytes) and data[:4] == b"\x7fELF"
    obj = read_object(data)
    program = obj.program("firewall")
    assert program.section == "xdp"
    assert program.code == firewall.object_spec.program("firewall").code
    assert program.line_info[0].insn == 0
    assert {m.name for m in obj.maps} == {m.name for m in firewall.compiled.maps}


def test_unknown_format(firewall: Compilation) -> None:
    with pytest.raises(ValueError, match="unknown output format 'wasm'"):
        firewall.output("wasm")
    assert set(OUTPUT_FORMATS) == {"ir", "asm", "elf", "stats"}


@pytest.mark.kernel
@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed")
@pytest.mark.parametrize("which", ["source", "hand-built IR"])
def test_libbpf_loads_the_elf(which: str, firewall: Compilation, tmp_path: Path) -> None:
    """bpftool (libbpf) as an independent loader of the object pykex writes."""
    compilation = firewall if which == "source" else Compilation.from_ir(fx.module())
    obj = tmp_path / "fw.o"
    obj.write_bytes(compilation.elf)
    ensure_bpffs()
    pins = Path("/sys/fs/bpf") / f"pkxrt_{secrets.token_hex(4)}"
    try:
        subprocess.run(["bpftool", "prog", "loadall", str(obj), str(pins)], check=True,
                       capture_output=True, timeout=60)
        assert sorted(p.name for p in pins.iterdir()) == sorted(
            p.name for p in compilation.compiled.programs)
    finally:
        shutil.rmtree(pins, ignore_errors=True)
