"""Kernel acceptance: BTF written by the Builder, loaded with BPF_BTF_LOAD."""

import errno
import struct

import pytest

from pykex.btf import Builder, Member, Spec
from pykex.kernel import BTFLoadError, load_btf, syscall
from pykex.kernel.uapi import MapType, UpdateFlag

pytestmark = pytest.mark.kernel


def test_rebuilt_vmlinux_is_accepted(vmlinux: Spec) -> None:
    builder = Builder()
    for t in vmlinux.types():
        assert builder.add(t) == t.id, f"type {t} was merged with an earlier one"
    data = builder.emit()
    # No log: the kernel's verbose BTF log of 120k+ types is far larger than the blob.
    with load_btf(data, log_level=0) as handle:
        assert int(handle) >= 0
    assert list(Spec.parse(data).types()) == list(vmlinux.types())


def test_rejection_carries_the_kernel_log() -> None:
    b = Builder()
    u32 = b.add_int("unsigned int", 4)
    b.add_struct("bad", 2, [Member("wide", u32, 0)])  # member runs past the struct's size
    with pytest.raises(BTFLoadError) as caught:
        load_btf(b.emit())
    assert caught.value.errno == errno.EINVAL
    assert "Member exceeds struct_size" in caught.value.log


def spin_lock_map_btf(lock_struct_name: str) -> tuple[bytes, int, int]:
    """BTF for ``struct value { struct <lock> l; __u64 v; }`` and a __u32 key."""
    b = Builder()
    if lock_struct_name == "bpf_spin_lock":
        lock = b.add_spin_lock()
    else:
        lock = b.add_struct(lock_struct_name, 4, [Member("val", b.add_int("unsigned int", 4), 0)])
    u64 = b.add_int("unsigned long long", 8)
    value = b.add_struct("value", 16, [Member("l", lock, 0), Member("v", u64, 64)])
    key = b.add_int("unsigned int", 4)
    return b.emit(), key, value


@pytest.mark.parametrize(
    ("lock_name", "kernel_sees_lock"), [("bpf_spin_lock", True), ("not_a_lock", False)]
)
def test_map_value_with_spin_lock(lock_name: str, kernel_sees_lock: bool) -> None:
    data, key_id, value_id = spin_lock_map_btf(lock_name)
    with (
        load_btf(data) as btf,
        syscall.map_create(
            MapType.ARRAY,
            4,
            16,
            1,
            name="locked",
            btf_fd=int(btf),
            btf_key_type_id=key_id,
            btf_value_type_id=value_id,
        ) as map_fd,
    ):
        key, value = struct.pack("=I", 0), struct.pack("=IIQ", 0, 0, 42)
        # BPF_F_LOCK is only valid on maps whose value BTF holds a bpf_spin_lock.
        if kernel_sees_lock:
            syscall.map_update(int(map_fd), key, value, UpdateFlag.LOCK)
            stored = syscall.map_lookup(int(map_fd), key, 16, UpdateFlag.LOCK)
            assert stored is not None and struct.unpack("=IIQ", stored)[2] == 42
        else:
            with pytest.raises(OSError) as caught:
                syscall.map_update(int(map_fd), key, value, UpdateFlag.LOCK)
            assert caught.value.errno == errno.EINVAL


def test_maps_section_btf_loads() -> None:
    b = Builder()
    u32 = b.add_int("unsigned int", 4)
    u64 = b.add_int("unsigned long long", 8)
    lock = b.add_spin_lock()
    value = b.add_struct("value", 16, [Member("l", lock, 0), Member("v", u64, 64)])
    counts = b.add_map_definition(map_type=MapType.HASH, key=u32, value=u64, max_entries=64)
    locked = b.add_map_definition(map_type=MapType.ARRAY, key=u32, value=value, max_entries=1)
    b.add_maps_section([("counts", counts), ("locked", locked)])
    with load_btf(b.emit()):
        pass
