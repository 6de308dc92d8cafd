"""Builder -> bytes -> reader, without the kernel."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykex.btf import (
    BTFError,
    Builder,
    Kind,
    Member,
    Pointer,
    Spec,
    Struct,
    Type,
    VarLinkage,
    VarSecinfo,
    dump,
)
from pykex.btf.reader import HEADER_SIZE

from .strategies import type_graphs


def build(types: list[Type], byteorder: str = "little", base: Spec | None = None) -> bytes:
    builder = Builder(base=base, byteorder=byteorder)
    first = builder.first_id
    for index, t in enumerate(types):
        assert builder.add(t) == first + index
    return builder.emit()


@settings(max_examples=150, deadline=None)
@given(types=type_graphs(), byteorder=st.sampled_from(["little", "big"]))
def test_round_trip(types: list[Type], byteorder: str) -> None:
    data = build(types, byteorder)
    spec = Spec.parse(data)
    assert spec.byteorder == byteorder
    decoded = list(spec.types())
    assert decoded == types
    assert [t.id for t in decoded] == list(range(1, len(types) + 1))
    # Re-encoding what was read gives the same bytes.
    assert build(decoded, byteorder) == data


@settings(max_examples=30, deadline=None)
@given(types=type_graphs())
def test_byte_orders_differ_only_in_encoding(types: list[Type]) -> None:
    little, big = build(types, "little"), build(types, "big")
    assert little != big
    assert dump(Spec.parse(little).types()) == dump(Spec.parse(big).types())


def test_ids_follow_insertion_order_and_duplicates_are_merged() -> None:
    b = Builder()
    u32 = b.add_int("unsigned int", 4)
    u64 = b.add_int("unsigned long long", 8)
    assert (u32, u64) == (1, 2)
    assert b.add_int("unsigned int", 4) == u32
    pair = b.add_struct("pair", 12, [Member("a", u32, 0), Member("b", u64, 32)])
    assert b.add_struct("pair", 12, [Member("a", u32, 0), Member("b", u64, 32)]) == pair
    other = b.add_struct("pair", 12, [Member("a", u32, 0), Member("c", u64, 32)])
    assert other == pair + 1
    assert b.add_pointer(pair) == other + 1
    assert b.add_pointer(pair) == other + 1
    assert len(b) == other + 2
    data = b.emit()
    assert Spec.parse(data).find("unsigned int").id == u32
    # One copy of each name in the string table.
    assert data.count(b"pair\0") == 1 and data.count(b"unsigned int\0") == 1


def test_forward_references_build_cycles() -> None:
    b = Builder()
    node = b.first_id
    pointer = b.add_pointer(node + 1)
    assert pointer == node
    assert b.add_struct("node", 8, [Member("next", pointer, 0)]) == node + 1
    spec = Spec.parse(b.emit())
    assert spec.member("node", "next").type == Pointer(target=node + 1)
    assert spec.sizeof("node") == 8


def test_emit_rejects_dangling_references() -> None:
    b = Builder()
    b.add_pointer(7)
    with pytest.raises(BTFError, match="never added"):
        b.emit()


def test_empty_builder_emits_valid_btf() -> None:
    data = Builder().emit()
    assert len(data) == HEADER_SIZE + 1
    assert len(Spec.parse(data)) == 1


def test_bitfields_need_kind_flag() -> None:
    b = Builder()
    u8 = b.add_int("unsigned char", 1)
    b.add_struct("flags", 1, [Member("a", u8, 0, 3), Member("b", u8, 3, 5)])
    spec = Spec.parse(b.emit())
    b_member = spec.member("flags", "b")
    assert (b_member.bit_offset, b_member.bitfield_size, b_member.byte_offset) == (3, 5, 0)


def test_spin_lock_value_layout() -> None:
    b = Builder()
    lock = b.add_spin_lock()
    u64 = b.add_int("unsigned long long", 8)
    value = b.add_struct("value", 16, [Member("l", lock, 0), Member("v", u64, 64)])
    spec = Spec.parse(b.emit())
    lock_type = spec.type_by_id(lock)
    assert isinstance(lock_type, Struct) and lock_type.name == "bpf_spin_lock"
    assert spec.sizeof(lock) == 4
    assert spec.member(value, "l.val").size == 4
    assert spec.member(value, "v").byte_offset == 8


def test_map_definitions_follow_libbpf_convention() -> None:
    b = Builder()
    u32 = b.add_int("unsigned int", 4)
    u64 = b.add_int("unsigned long long", 8)
    hash_map = b.add_map_definition(map_type=1, key=u32, value=u64, max_entries=1024)
    array = b.add_map_definition(map_type=2, key=u32, value=u64, max_entries=4, map_flags=0x400)
    datasec, placed = b.add_maps_section([("counts", hash_map), ("config", array)])
    spec = Spec.parse(b.emit())

    def encoded_number(struct_id: int, member: str) -> int:
        pointer = spec.type_by_id(spec.member(struct_id, member).type.id)
        assert pointer.kind == Kind.PTR
        array_type = spec.type_by_id(pointer.target)
        assert array_type.kind == Kind.ARRAY
        assert spec.type_by_id(array_type.element).name == "int"
        return array_type.count

    assert encoded_number(hash_map, "type") == 1
    assert encoded_number(hash_map, "max_entries") == 1024
    assert encoded_number(array, "map_flags") == 0x400
    key = spec.member(hash_map, "key").type
    assert key.kind == Kind.PTR and key.target == u32
    assert [m.name for m in spec.type_by_id(hash_map).members] == [
        "type",
        "key",
        "value",
        "max_entries",
    ]
    section = spec.type_by_id(datasec)
    assert section.name == ".maps" and section.size == 32 + 40
    assert section.vars == (
        VarSecinfo(placed[0].var_id, 0, 32),
        VarSecinfo(placed[1].var_id, 32, 40),
    )
    variable = spec.type_by_id(placed[1].var_id)
    assert variable.name == "config" and variable.linkage == VarLinkage.GLOBAL_ALLOCATED


@settings(max_examples=40, deadline=None)
@given(base_types=type_graphs(), data=st.data())
def test_split_btf_continues_ids_and_strings(base_types: list[Type], data: st.DataObject) -> None:
    base = Spec.parse(build(base_types))
    split_types = data.draw(type_graphs(first_id=len(base)))
    split_data = build(split_types, base=base)
    split = Spec.parse(split_data, base=base)
    assert split.first_id == len(base)
    assert list(split.types(include_base=False)) == split_types
    assert list(split.types()) == base_types + split_types
    assert [t.id for t in split.types()] == list(range(1, len(base) + len(split_types)))
    for t in split_types:
        if t.name:
            assert t in split.find_all(t.name, t.kind)


def test_split_btf_on_top_of_vmlinux(vmlinux: Spec) -> None:
    b = Builder(base=vmlinux)
    task = vmlinux.find("task_struct", Kind.STRUCT).id
    pointer = b.add_pointer(task)
    holder = b.add_struct("holder", 8, [Member("task", pointer, 0)])
    assert holder == len(vmlinux) + 1
    module = Spec.parse(b.emit(), base=vmlinux)
    assert module.find("holder").id == holder
    assert module.member("holder", "task").type.target == task
    assert module.find("task_struct", Kind.STRUCT).id == task
    assert module.kfunc_id("bpf_iter_num_new") == vmlinux.kfunc_id("bpf_iter_num_new")
    assert module.type_by_id(task).name == "task_struct"
