"""Object specs: section names, canonical relocations, validation, linking."""

from __future__ import annotations

import struct

import pytest

from pykex.bpf import R0, R1, assemble, call_local, exit, ld_func, ld_map_value, mov64
from pykex.btf import FuncInfo, LineInfo
from pykex.elf import (
    MapSpec,
    ObjectSpec,
    ObjectSpecError,
    ProgramSpec,
    Relocation,
    RelocationKind,
    link_program,
    program_from_instructions,
    section_type,
)
from pykex.kernel.uapi import BPF_F_SLEEPABLE, AttachType, MapType, ProgType


@pytest.mark.parametrize(
    ("section", "prog_type", "attach_type"),
    [
        ("xdp", ProgType.XDP, AttachType.XDP),
        ("xdp/devmap", ProgType.XDP, AttachType.XDP_DEVMAP),
        ("tc", ProgType.SCHED_CLS, None),
        ("tc/ingress", ProgType.SCHED_CLS, AttachType.TCX_INGRESS),
        ("tracepoint/syscalls/sys_enter_openat", ProgType.TRACEPOINT, None),
        ("raw_tracepoint/sys_enter", ProgType.RAW_TRACEPOINT, None),
        ("raw_tp.w/sys_enter", ProgType.RAW_TRACEPOINT_WRITABLE, None),
        ("uprobe/usr/bin/true:main", ProgType.KPROBE, None),
        ("perf_event", ProgType.PERF_EVENT, None),
        ("socket", ProgType.SOCKET_FILTER, None),
        ("cgroup_skb/ingress", ProgType.CGROUP_SKB, AttachType.CGROUP_INET_INGRESS),
        ("cgroup/connect4", ProgType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT),
        ("fentry/do_unlinkat", ProgType.TRACING, AttachType.TRACE_FENTRY),
        ("lsm/file_open", ProgType.LSM, AttachType.LSM_MAC),
    ],
)
def test_section_names_give_libbpf_program_types(
    section: str, prog_type: ProgType, attach_type: AttachType | None
) -> None:
    entry = section_type(section)
    assert (entry.prog_type, entry.attach_type) == (prog_type, attach_type)


def test_sleepable_sections_carry_the_flag() -> None:
    assert section_type("uprobe.s/bin/sh:main").prog_flags == BPF_F_SLEEPABLE
    assert section_type("uprobe/bin/sh:main").prog_flags == 0


@pytest.mark.parametrize("section", ["xdpfoo", "tracepoints/x", "", "unknown/thing"])
def test_unknown_sections_are_refused(section: str) -> None:
    with pytest.raises(ObjectSpecError, match="no known program type"):
        section_type(section)


def test_relocated_instructions_are_canonical() -> None:
    # The same program with different junk in its relocated fields compares equal.
    def spec(junk: int) -> ProgramSpec:
        code = (
            struct.pack("<BBhi", 0x18, 0x21, 0, junk)  # r1 = map_value (src 2)
            + struct.pack("<BBhi", 0, 0, 0, junk)
            + struct.pack("<BBhi", 0x85, 0x10, 0, junk)
            + struct.pack("<BBhi", 0x95, 0, 0, 0)
        )
        relocations = [
            Relocation(0, RelocationKind.MAP_VALUE, ".data", 12),
            Relocation(2, RelocationKind.CALL, "f"),
        ]
        return ProgramSpec("p", "xdp", code, relocations)

    assert spec(5).code == spec(-77).code
    ld, second, call = struct.unpack_from("<BBhi", spec(5).code, 0), *(
        struct.unpack_from("<BBhi", spec(5).code, at) for at in (8, 16)
    )
    assert ld == (0x18, 0x01, 0, 12)  # src cleared, the offset is the in-place addend
    assert second == (0, 0, 0, 0)
    assert call == (0x85, 0x10, 0, -1)


@pytest.mark.parametrize(
    ("relocation", "message"),
    [
        (Relocation(5, RelocationKind.MAP, "m"), "outside the program"),
        (Relocation(0, RelocationKind.MAP, "m"), "64-bit immediate load"),
        (Relocation(0, RelocationKind.CALL, "f"), "call"),
        (Relocation(0, RelocationKind.MAP, "m", 4), "64-bit immediate load"),
    ],
)
def test_bad_relocations_are_refused(relocation: Relocation, message: str) -> None:
    code = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    with pytest.raises(ObjectSpecError, match=message):
        ProgramSpec("p", "xdp", code, [relocation])


def test_objects_refuse_dangling_references() -> None:
    program = program_from_instructions("p", "xdp", [ld_map_value(R1, "missing", 0), exit()])
    with pytest.raises(ObjectSpecError, match="'missing'"):
        ObjectSpec([program])
    with pytest.raises(ObjectSpecError, match="subprograms"):
        ObjectSpec([program_from_instructions("f", ".text", [exit()])])


def test_global_data_maps_need_their_contents() -> None:
    assert MapSpec.global_data(".rodata", b"abcd").flags == 0x80  # BPF_F_RDONLY_PROG
    with pytest.raises(ObjectSpecError, match="contents"):
        MapSpec(".data", MapType.ARRAY, 4, 8, 1)
    with pytest.raises(ObjectSpecError, match="only global-data"):
        MapSpec("m", MapType.ARRAY, 4, 8, 1, data=bytes(8))


def test_program_from_instructions_turns_references_into_relocations() -> None:
    instructions = [
        ld_map_value(R1, ".data", 24),
        ld_func(R1, "callback"),
        mov64(R0, 0),
        call_local("helper"),
        exit(),
    ]
    program = program_from_instructions("p", "xdp", instructions)
    assert program.relocations == [
        Relocation(0, RelocationKind.MAP_VALUE, ".data", 24),
        Relocation(2, RelocationKind.CALL, "callback"),
        Relocation(5, RelocationKind.CALL, "helper"),
    ]


def test_linking_appends_callees_once_and_resolves_offsets() -> None:
    main = program_from_instructions(
        "main", "xdp", [call_local("a"), call_local("b"), exit()], [FuncInfo(0, 7)]
    )
    a = program_from_instructions("a", ".text", [*assemble("r0 = 1"), call_local("b"), exit()])
    b = program_from_instructions("b", ".text", [*assemble("r0 = 2"), exit()])
    b.line_info = [LineInfo(0, "b.py", "return 2", 3, 4)]
    obj = ObjectSpec([main], [a, b])
    linked = link_program(obj, "main")
    assert len(linked.code) == 8 * (3 + 3 + 2)  # b appears once although called twice

    def call_target(index: int) -> int:
        _, _, _, imm = struct.unpack_from("<BBhi", linked.code, index * 8)
        return index + 1 + imm

    assert [call_target(0), call_target(1), call_target(4)] == [3, 6, 6]
    assert linked.func_info == [FuncInfo(0, 7)]
    # Line info, once present, starts every function (the kernel insists).
    assert [r.insn for r in linked.line_info] == [0, 3, 6]
    assert linked.line_info[2] == LineInfo(6, "b.py", "return 2", 3, 4)
