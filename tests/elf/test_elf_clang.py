"""clang-compiled libbpf-style objects: read, loaded with pykex, run, maps read back."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pykex.elf import (
    ELFFormatError,
    ObjectSpec,
    RelocationKind,
    link_program,
    load_object,
    read_object,
    write_object,
)
from pykex.kernel import BPFError
from pykex.kernel.uapi import MapFlag, MapType, ProgType

from .c_objects import CALLS_AND_GLOBALS, KFUNC_ITERATOR, SPIN_LOCK, XDP_COUNTER, compile_c

PACKET = bytes(range(60))


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    directory: Path = tmp_path_factory.mktemp("clang")
    return {
        "counter": compile_c(XDP_COUNTER, directory, "counter"),
        "calls": compile_c(CALLS_AND_GLOBALS, directory, "calls"),
        "lock": compile_c(SPIN_LOCK, directory, "lock"),
        "kfunc": compile_c(KFUNC_ITERATOR, directory, "kfunc"),
    }


def test_counter_object_is_read_like_libbpf(objects: dict[str, bytes]) -> None:
    spec = read_object(objects["counter"])
    assert [p.name for p in spec.programs] == ["count"]
    program = spec.program("count")
    assert program.prog_type == ProgType.XDP
    lengths = spec.map("lengths")
    assert (lengths.type, lengths.key_size, lengths.value_size, lengths.max_entries) == (
        MapType.HASH,
        4,
        8,
        64,
    )
    assert lengths.btf_key_type_id and lengths.btf_value_type_id
    bss = spec.map(".bss")
    assert [v.name for v in bss.variables] == ["packets"]
    kinds = {(r.kind, r.target) for r in program.relocations}
    assert kinds == {(RelocationKind.MAP, "lengths"), (RelocationKind.MAP_VALUE, ".bss")}
    assert program.func_info and program.func_info[0].insn == 0
    assert any("bpf_map_lookup_elem" in r.line_text for r in program.line_info)
    assert spec.license == "GPL"


@pytest.mark.kernel
def test_counter_runs_and_fills_its_maps(objects: dict[str, bytes]) -> None:
    with load_object(read_object(objects["counter"])) as loaded:
        program = loaded.programs["count"]
        assert program.test_run(PACKET, repeat=3).retval == 2
        assert program.test_run(PACKET[:20]).retval == 2
        assert dict(loaded.maps["lengths"].items()) == {60: 3, 20: 1}
        assert struct.unpack("<Q", loaded.variable("packets")) == (4,)
        assert program.info().btf_id != 0


def test_calls_are_linked_with_their_subprograms(objects: dict[str, bytes]) -> None:
    spec = read_object(objects["calls"])
    assert {p.name for p in spec.subprograms} == {"scale", "offset_scale"}
    linked = link_program(spec, "by_length")
    expected = sum(f.insn_count for f in spec.functions if f.name != "constant")
    assert len(linked.code) // 8 == expected
    assert [r.insn for r in linked.func_info] == sorted(r.insn for r in linked.func_info)
    assert len(linked.func_info) == 3
    only_scale = link_program(spec, "constant")
    assert len(only_scale.func_info) == 2
    rodata = spec.map(".rodata")
    assert rodata.flags == MapFlag.RDONLY_PROG
    assert struct.unpack("<I", rodata.data or b"") == (7,)


@pytest.mark.kernel
def test_calls_and_globals_compute_what_c_says(objects: dict[str, bytes]) -> None:
    with load_object(read_object(objects["calls"])) as loaded:
        assert loaded.programs["by_length"].test_run(PACKET).retval == (60 * 7 + 1000) & 0xFF
        assert loaded.programs["constant"].test_run(PACKET, repeat=2).retval == 21
        assert struct.unpack("<Q", loaded.variable("calls")) == (3,)
        with pytest.raises(BPFError):
            loaded.maps[".rodata"][0] = bytes(4)  # frozen: constants stay constant


@pytest.mark.kernel
def test_spin_lock_map_gets_its_btf(objects: dict[str, bytes]) -> None:
    with load_object(read_object(objects["lock"])) as loaded:
        assert loaded.programs["locked"].test_run(PACKET, repeat=4).retval == 2
        value = loaded.maps["guarded"][0]
        assert struct.unpack_from("<Q", bytes(value), 8) == (20,)


@pytest.mark.kernel
def test_extern_kfuncs_are_resolved_and_their_btf_made_loadable(
    objects: dict[str, bytes],
) -> None:
    spec = read_object(objects["kfunc"])
    relocations = spec.program("sum_to_ten").relocations
    kfuncs = {r.target for r in relocations if r.kind is RelocationKind.KFUNC}
    assert kfuncs == {"bpf_iter_num_new", "bpf_iter_num_next", "bpf_iter_num_destroy"}
    assert b"sum %d" in (spec.map(".rodata").data or b"")
    with load_object(spec) as loaded:
        assert loaded.programs["sum_to_ten"].test_run(PACKET).retval == 55


@pytest.mark.kernel
def test_clang_objects_survive_a_write_read_cycle(objects: dict[str, bytes]) -> None:
    for data in objects.values():
        spec = read_object(data)
        rewritten = read_object(write_object(spec))
        assert _shape(rewritten) == _shape(spec)
    with load_object(read_object(write_object(read_object(objects["calls"])))) as loaded:
        assert loaded.programs["constant"].test_run(PACKET).retval == 21


def _shape(spec: ObjectSpec) -> list[object]:
    return [
        [(p.name, p.section, p.code, p.relocations, p.line_info) for p in spec.functions],
        [(m.name, m.type, m.key_size, m.value_size, m.flags, m.data) for m in spec.maps],
        spec.license,
    ]


def test_legacy_maps_section_is_refused(tmp_path: Path) -> None:
    legacy = compile_c(
        "struct bpf_map_def { unsigned int type, key_size, value_size, max_entries; };\n"
        '__attribute__((section("maps"), used)) struct bpf_map_def m = {1, 4, 4, 1};\n'
        '__attribute__((section("xdp"), used)) int p(void *ctx) { return 2; }\n',
        tmp_path,
    )
    with pytest.raises(ELFFormatError, match="legacy"):
        read_object(legacy)
