"""Hypothesis strategies for BPF object specs whose code the reader can split again."""

from __future__ import annotations

import itertools
import struct

from hypothesis import strategies as st

from pykex.btf import LineInfo
from pykex.elf import MapSpec, ObjectSpec, ProgramSpec, Relocation, RelocationKind, Variable
from pykex.kernel.uapi import MapType

SECTIONS = [
    "xdp",
    "tc",
    "socket",
    "tracepoint/syscalls/sys_enter_openat",
    "raw_tracepoint/sys_enter",
    "cgroup_skb/ingress",
    "perf_event",
    "uprobe/usr/lib/libc.so.6:malloc",
]
MAP_TYPES = [MapType.HASH, MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.LRU_HASH]

_MOV = 0xB7
_LD_IMM64 = 0x18
_CALL = 0x85
_EXIT = 0x95


def _insn(opcode: int, regs: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", opcode, regs, off, imm)


@st.composite
def map_specs(draw: st.DrawFn, index: int) -> MapSpec:
    return MapSpec(
        f"map_{index}",
        draw(st.sampled_from(MAP_TYPES)),
        draw(st.integers(1, 64)),
        draw(st.integers(1, 256)),
        draw(st.integers(1, 4096)),
    )


@st.composite
def data_maps(draw: st.DrawFn, section: str) -> MapSpec:
    size = draw(st.integers(1, 64))
    blank = section == ".bss"  # NOBITS: zero-initialised
    contents = bytes(size) if blank else draw(st.binary(min_size=size, max_size=size))
    cuts = sorted(draw(st.sets(st.integers(1, size - 1), max_size=3))) if size > 1 else []
    bounds = [0, *cuts, size]
    stem = section.strip(".").replace(".", "_")
    variables = [
        Variable(f"{stem}_var{i}", start, end - start)
        for i, (start, end) in enumerate(itertools.pairwise(bounds))
        if draw(st.booleans())
    ]
    return MapSpec.global_data(section, contents, variables)


@st.composite
def functions(
    draw: st.DrawFn,
    name: str,
    section: str,
    maps: list[MapSpec],
    callees: list[str],
) -> ProgramSpec:
    code = bytearray()
    relocations = []
    kinds = ["mov"] + (["map"] if maps else []) + (["call"] if callees else [])
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(kinds))
        slot = len(code) // 8
        if kind == "mov":
            code += _insn(_MOV, draw(st.integers(0, 9)), 0, draw(st.integers(-(2**31), 2**31 - 1)))
        elif kind == "map":
            target = draw(st.sampled_from(maps))
            code += _insn(_LD_IMM64, 1) + _insn(0)
            if target.is_global_data:
                offset = draw(st.integers(0, target.value_size - 1))
                relocations.append(
                    Relocation(slot, RelocationKind.MAP_VALUE, target.name, offset)
                )
            else:
                relocations.append(Relocation(slot, RelocationKind.MAP, target.name))
        else:
            code += _insn(_CALL, 0x10, 0, -1)
            callee = draw(st.sampled_from(callees))
            relocations.append(Relocation(slot, RelocationKind.CALL, callee))
    code += _insn(_EXIT)
    slots = len(code) // 8
    starts = sorted(draw(st.sets(st.integers(0, slots - 1), max_size=3)))
    columns = st.integers(0, 80)
    line_info = [
        LineInfo(insn, "prog.py", f"line {insn}", draw(st.integers(1, 5000)), draw(columns))
        for insn in starts
        if code[insn * 8 - 8] != _LD_IMM64 or insn == 0  # never the second slot of a wide load
    ]
    return ProgramSpec(name, section, bytes(code), relocations, line_info=line_info)


@st.composite
def object_specs(draw: st.DrawFn) -> ObjectSpec:
    maps = [draw(map_specs(i)) for i in range(draw(st.integers(0, 3)))]
    for section in (".data", ".rodata", ".bss"):
        if draw(st.booleans()):
            maps.append(draw(data_maps(section)))
    subprogram_names = [f"sub_{i}" for i in range(draw(st.integers(0, 2)))]
    subprograms = [
        draw(functions(name, ".text", maps, subprogram_names[i + 1 :]))
        for i, name in enumerate(subprogram_names)
    ]
    programs = [
        draw(functions(f"prog_{i}", draw(st.sampled_from(SECTIONS)), maps, subprogram_names))
        for i in range(draw(st.integers(1, 3)))
    ]
    license_text = draw(st.sampled_from(["GPL", "Dual BSD/GPL", "MIT"]))
    return ObjectSpec(programs, subprograms, maps, license_text)
