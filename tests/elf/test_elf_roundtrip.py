"""Writer -> reader round trips, and what other tools say about the writer's output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from pykex.bpf import assemble, call_local, exit
from pykex.elf import (
    MapSpec,
    ObjectSpec,
    Variable,
    program_from_instructions,
    read_object,
    write_object,
)
from pykex.kernel.uapi import MapType

from .c_objects import require_tools
from .strategies import object_specs


def _comparable(spec: ObjectSpec) -> list[object]:
    """Everything a spec says except BTF ids, which the writer adds."""
    functions = [
        (f.name, f.section, f.code, f.relocations, f.line_info) for f in spec.functions
    ]
    maps = [
        (
            m.name,
            int(m.type),
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags,
            m.data,
            [(v.name, v.offset, v.size) for v in m.variables],
        )
        for m in spec.maps
    ]
    return [sorted(functions), sorted(maps, key=lambda m: m[0]), spec.license]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(object_specs())
def test_read_inverts_write(spec: ObjectSpec) -> None:
    written = write_object(spec)
    back = read_object(written)
    assert _comparable(back) == _comparable(spec)
    # Every function has a FUNC in the BTF, and writing what was read is a fixpoint.
    assert all(f.func_info and f.func_info[0].insn == 0 for f in back.functions)
    assert write_object(back) == written


def sample_object() -> ObjectSpec:
    """An XDP program using a map, a .bss counter and a subprogram.

    No BPF_ST instructions: llvm-objdump prints them as ``<unknown>``.
    """
    body = assemble(
        """
        r6 = r1
        r1 = 0
        *(u32 *)(r10 -4) = r1
        r2 = r10
        r2 += -4
        r1 = map[counts] ll
        call bpf_map_lookup_elem
        if r0 == 0 goto skip
        r1 = 1
        lock *(u64 *)(r0 +0) += r1
    skip:
        r1 = map_value[.bss]+8 ll
        r2 = 1
        lock *(u64 *)(r1 +0) += r2
        r1 = 1
        """,
        filename="sample.py",
    )
    main = [*body, call_local("plus_one"), exit()]
    plus_one = assemble("r0 = r1\nr0 += 1\nexit", filename="sample.py")
    return ObjectSpec(
        programs=[program_from_instructions("count", "xdp", main)],
        subprograms=[program_from_instructions("plus_one", ".text", plus_one)],
        maps=[
            MapSpec("counts", MapType.ARRAY, 4, 8, 4),
            MapSpec.global_data(".bss", bytes(16), [Variable("a", 0, 8), Variable("b", 8, 8)]),
            MapSpec.global_data(".rodata", b"\x07\0\0\0", [Variable("seven", 0, 4)]),
        ],
    )


def test_llvm_tools_read_the_output_without_complaint(tmp_path: Path) -> None:
    require_tools("llvm-readelf", "llvm-objdump")
    path = tmp_path / "sample.o"
    path.write_bytes(write_object(sample_object()))
    readelf = subprocess.run(
        ["llvm-readelf", "-a", str(path)], capture_output=True, text=True, check=True
    )
    assert readelf.stderr == ""
    assert "EM_BPF" in readelf.stdout
    for needle in ("R_BPF_64_64", "R_BPF_64_32", "FUNC    GLOBAL DEFAULT", ".BTF.ext"):
        assert needle in readelf.stdout, needle
    objdump = subprocess.run(
        ["llvm-objdump", "-d", "-r", str(path)], capture_output=True, text=True, check=True
    )
    assert objdump.stderr == ""
    assert "<unknown>" not in objdump.stdout
    assert "R_BPF_64_32\tplus_one" in objdump.stdout


@pytest.mark.kernel
def test_bpftool_loads_the_output(tmp_path: Path, bpffs_dir: Path) -> None:
    require_tools("bpftool")
    path = tmp_path / "sample.o"
    path.write_bytes(write_object(sample_object()))
    programs, maps = bpffs_dir / "progs", bpffs_dir / "maps"
    subprocess.run(
        ["bpftool", "prog", "loadall", str(path), str(programs), "pinmaps", str(maps)],
        check=True,
        capture_output=True,
    )
    assert sorted(p.name for p in maps.iterdir()) == ["counts", "sample_bss", "sample_rodata"]
    shown = subprocess.run(
        ["bpftool", "prog", "dump", "xlated", "pinned", str(programs / "count"), "linum"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "int count(void * ctx):" in shown
    assert "[file:sample.py line_num:" in shown
    assert "int plus_one():" in shown
    counts = subprocess.run(
        ["bpftool", "map", "show", "pinned", str(maps / "counts")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "array" in counts and "max_entries 4" in counts
