"""The reader against the running kernel's BTF."""

import subprocess
import time

import pytest

from pykex.btf import (
    BTFNotFoundError,
    Composite,
    Enum,
    Enum64,
    Func,
    FuncProto,
    Int,
    Kind,
    Spec,
    Struct,
    dump,
    load_vmlinux,
)
from pykex.btf.reader import VMLINUX_BTF_PATH

from .conftest import require_tools


def test_every_type_decodes_and_references_stay_in_range(vmlinux: Spec) -> None:
    count = 0
    kinds = set()
    for t in vmlinux.types():
        count += 1
        kinds.add(t.kind)
        assert vmlinux.kind_of(t.id) == t.kind
        assert all(0 <= ref < len(vmlinux) for ref in t.references())
    assert count == len(vmlinux) - 1
    # A BTF-enabled 6.x kernel uses nearly every kind.
    assert {Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.FUNC, Kind.FUNC_PROTO} <= kinds
    assert {Kind.VAR, Kind.DATASEC, Kind.DECL_TAG} <= kinds


def test_reading_all_of_vmlinux_is_fast() -> None:
    data = VMLINUX_BTF_PATH.read_bytes()
    started = time.perf_counter()
    spec = Spec.parse(data)
    for _ in spec.types():
        pass
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"parsing and decoding all of vmlinux took {elapsed:.2f}s"


def test_load_vmlinux_is_cached(vmlinux: Spec) -> None:
    assert load_vmlinux() is vmlinux


def test_matches_bpftool_dump_line_for_line(vmlinux: Spec) -> None:
    require_tools("bpftool")
    expected = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(VMLINUX_BTF_PATH)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    ours = dump(vmlinux.types(), vmlinux.type_by_id)
    if ours != expected:
        mismatch = next(
            (a, b) for a, b in zip(ours.splitlines(), expected.splitlines(), strict=False) if a != b
        )
        pytest.fail(f"first difference: ours {mismatch[0]!r} vs bpftool {mismatch[1]!r}")


def test_xdp_md_layout(vmlinux: Spec) -> None:
    xdp_md = vmlinux.find("xdp_md", kind=Kind.STRUCT)
    assert isinstance(xdp_md, Struct)
    expected = ["data", "data_end", "data_meta", "ingress_ifindex", "rx_queue_index"]
    assert [m.name for m in xdp_md.members][: len(expected)] == expected
    for index, name in enumerate(expected):
        layout = vmlinux.member(xdp_md, name)
        assert layout.byte_offset == 4 * index
        assert layout.size == 4
        assert layout.bitfield_size == 0
    assert vmlinux.sizeof(xdp_md) == 4 * len(xdp_md.members)


def test_task_struct_pid_resolves_through_typedef(vmlinux: Spec) -> None:
    pid = vmlinux.member("task_struct", "pid")
    assert pid.type.kind == Kind.TYPEDEF and pid.type.name == "pid_t"
    resolved = vmlinux.resolve(pid.type)
    assert isinstance(resolved, Int) and resolved.signed and resolved.size == 4
    assert pid.size == 4
    declared = next(m for m in vmlinux.find("task_struct", Kind.STRUCT).members if m.name == "pid")
    assert pid.bit_offset == declared.bit_offset
    assert 0 < pid.byte_offset < vmlinux.sizeof("task_struct")


def test_nested_and_anonymous_member_lookup(vmlinux: Spec) -> None:
    se = vmlinux.member("task_struct", "se")
    vruntime = vmlinux.member("sched_entity", "vruntime")
    nested = vmlinux.member("task_struct", "se.vruntime")
    assert nested.bit_offset == se.bit_offset + vruntime.bit_offset
    assert nested.size == 8
    # sk_buff's list pointers and device sit inside anonymous unions and structs.
    skb = vmlinux.find("sk_buff", Kind.STRUCT)
    assert isinstance(skb, Composite)
    direct = [m.name for m in skb.members]
    assert "next" not in direct and "dev" not in direct
    assert vmlinux.member(skb, "next").byte_offset == 0
    assert vmlinux.member(skb, "prev").byte_offset == 8
    assert vmlinux.member(skb, "dev").byte_offset == 16
    with pytest.raises(BTFNotFoundError, match="no member 'no_such_member'"):
        vmlinux.member("task_struct", "se.no_such_member")
    with pytest.raises(BTFNotFoundError, match="has no members"):
        vmlinux.member("task_struct", "pid.x")


def test_bitfield_member(vmlinux: Spec) -> None:
    task = vmlinux.find("task_struct", Kind.STRUCT)
    assert isinstance(task, Composite)
    bitfields = [m for m in task.members if m.bitfield_size]
    assert bitfields, "task_struct has bitfields (sched_reset_on_fork, ...)"
    first = bitfields[0]
    layout = vmlinux.member(task, first.name)
    assert (layout.bit_offset, layout.bitfield_size) == (first.bit_offset, first.bitfield_size)


def test_sizeof_through_typedefs_and_arrays(vmlinux: Spec) -> None:
    assert vmlinux.sizeof("u64") == 8
    assert vmlinux.sizeof("__u16") == 2
    comm = vmlinux.member("task_struct", "comm")
    assert comm.size == 16
    with pytest.raises(BTFNotFoundError):
        vmlinux.find("no_such_type_in_any_kernel")


def test_enum_bpf_func_id(vmlinux: Spec) -> None:
    func_ids = vmlinux.find("bpf_func_id", Kind.ENUM)
    assert isinstance(func_ids, Enum)
    assert func_ids.values[0].name == "BPF_FUNC_unspec"
    assert vmlinux.enum_value("bpf_func_id", "BPF_FUNC_map_lookup_elem") == 1
    assert vmlinux.enum_value("bpf_func_id", "BPF_FUNC_map_update_elem") == 2
    assert func_ids.value_of("BPF_FUNC_loop") > 100
    owner, value = vmlinux.enumerator("BPF_MAP_TYPE_ARRAY")
    assert owner.name == "bpf_map_type" and value == 2
    with pytest.raises(BTFNotFoundError):
        vmlinux.enum_value("bpf_func_id", "BPF_FUNC_does_not_exist")


def test_enum_signedness(vmlinux: Spec) -> None:
    enums = [t for t in vmlinux.types() if isinstance(t, Enum | Enum64)]
    negative = [t for t in enums if any(v.value < 0 for v in t.values)]
    assert negative and all(t.signed for t in negative)
    unsigned64 = [t for t in enums if isinstance(t, Enum64) and not t.signed]
    assert unsigned64 and all(v.value >= 0 for t in unsigned64 for v in t.values)
    assert any(v.value >= 1 << 63 for t in unsigned64 for v in t.values)


@pytest.mark.parametrize(
    "name",
    [
        "bpf_iter_num_new",
        "bpf_iter_num_next",
        "bpf_iter_num_destroy",
        "bpf_throw",
        "bpf_res_spin_lock",
    ],
)
def test_kfunc_ids(vmlinux: Spec, name: str) -> None:
    kfunc_id = vmlinux.kfunc_id(name)
    func = vmlinux.type_by_id(kfunc_id)
    assert isinstance(func, Func) and func.name == name
    assert isinstance(vmlinux.func_proto(func), FuncProto)


def test_kfunc_signature(vmlinux: Spec) -> None:
    proto = vmlinux.func_proto(vmlinux.kfunc_id("bpf_iter_num_new"))
    assert [p.name for p in proto.params] == ["it", "start", "end"]
    assert vmlinux.sizeof(proto.result) == 4


def test_plain_function_is_not_a_kfunc(vmlinux: Spec) -> None:
    assert vmlinux.find_all("vfs_read", Kind.FUNC)
    with pytest.raises(BTFNotFoundError, match="not marked as a kfunc"):
        vmlinux.kfunc_id("vfs_read")
    with pytest.raises(BTFNotFoundError, match="no kfunc"):
        vmlinux.kfunc_id("no_such_function_anywhere")
    assert 50 < len(vmlinux.kfuncs()) < len(vmlinux.find_all("vfs_read", Kind.FUNC)) + 10_000
