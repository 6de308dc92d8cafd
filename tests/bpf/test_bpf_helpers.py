"""The helper-id table against this kernel's ``enum bpf_func_id``."""

from __future__ import annotations

import os

import pytest

from pykex.bpf import HELPER_IDS, call_helper, helper_id, helper_name
from pykex.bpf.helpers import HELPER_NAMES
from pykex.btf import load_vmlinux
from pykex.btf.types import EnumBase

VMLINUX = "/sys/kernel/btf/vmlinux"


def _kernel_helpers() -> dict[str, int]:
    enum = next(t for t in load_vmlinux().find_all("bpf_func_id") if isinstance(t, EnumBase))
    return {
        "bpf_" + v.name.removeprefix("BPF_FUNC_"): v.value
        for v in enum.values
        if v.name.startswith("BPF_FUNC_") and v.name != "BPF_FUNC_unspec"
    }


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="this kernel exports no BTF")
def test_helper_table_matches_the_kernel_enum() -> None:
    """Every helper this kernel has is in the table with the same id; the table
    may know helpers newer than the kernel."""
    kernel = _kernel_helpers()
    assert {name: HELPER_IDS.get(name) for name in kernel} == kernel


def test_helper_ids_are_dense_and_start_at_one() -> None:
    assert HELPER_NAMES[0] == ""
    assert sorted(HELPER_IDS.values()) == list(range(1, len(HELPER_NAMES)))
    assert helper_id("bpf_map_lookup_elem") == 1
    assert helper_id("map_lookup_elem") == 1
    assert helper_id("bpf_loop") == 181
    assert helper_name(1) == "bpf_map_lookup_elem"
    assert helper_name(0) is None
    assert helper_name(len(HELPER_NAMES)) is None
    assert call_helper("ktime_get_ns").imm == 5
