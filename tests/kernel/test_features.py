"""Feature probes: they follow what the kernel does, agree with bpftool, and explain gaps."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import subprocess
from functools import cache

import pytest

from pykex.kernel import NotSupportedError, features, syscall
from pykex.kernel.features import Feature, FeatureUnavailableError
from pykex.kernel.uapi import Cmd, MapType, ProgType

pytestmark = pytest.mark.kernel


@cache
def bpftool_features() -> dict:
    """bpftool's own probe of this kernel: an independent implementation to compare with."""
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool is not installed")
    done = subprocess.run(
        ["bpftool", "feature", "probe", "kernel", "-j"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    return json.loads(done.stdout)


def test_every_program_and_map_type_has_a_probe() -> None:
    names = set(features.names())
    for prog_type in ProgType:
        if prog_type != ProgType.UNSPEC:
            assert f"program.{prog_type.name.lower()}" in names
    for map_type in MapType:
        if map_type != MapType.UNSPEC:
            assert f"map.{map_type.name.lower()}" in names


def test_names_come_grouped_in_category_order() -> None:
    order = list(features.CATEGORIES)
    categories = [name.split(".")[0] for name in features.names()]
    assert categories == sorted(categories, key=order.index)
    assert set(categories) == set(order)


def test_results_are_cached_per_process() -> None:
    assert features.probe("program.xdp") is features.probe("program.xdp")


def test_xdp_is_available_and_required_without_error() -> None:
    feature = features.require("program.xdp")
    assert feature == Feature("program.xdp", "program", "xdp programs", True)


def test_unknown_feature_names_are_rejected_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"program\.xdp"):
        features.probe("program.teleport")


@pytest.mark.parametrize("prog_type", [t for t in ProgType if t != ProgType.UNSPEC])
def test_program_types_agree_with_bpftool(prog_type: ProgType) -> None:
    key = f"have_{prog_type.name.lower()}_prog_type"
    theirs = bpftool_features()["program_types"].get(key)
    if theirs is None:
        pytest.skip(f"this bpftool does not know {prog_type.name.lower()}")
    if prog_type == ProgType.TRACING:
        pytest.skip("bpftool probes tracing with a dummy BTF id, pykex with a real tp_btf target")
    assert features.probe(f"program.{prog_type.name.lower()}").available is theirs


@pytest.mark.parametrize("map_type", [t for t in MapType if t != MapType.UNSPEC])
def test_map_types_agree_with_bpftool(map_type: MapType) -> None:
    key = f"have_{map_type.name.lower()}_map_type"
    theirs = bpftool_features()["map_types"].get(key)
    if theirs is None:
        pytest.skip(f"this bpftool does not know {map_type.name.lower()}")
    assert features.probe(f"map.{map_type.name.lower()}").available is theirs


def test_bpf_loop_agrees_with_bpftool() -> None:
    xdp_helpers = bpftool_features()["helpers"]["xdp_available_helpers"]
    assert features.probe("helper.bpf_loop").available is ("bpf_loop" in xdp_helpers)


def test_kprobe_follows_the_kprobe_pmu() -> None:
    present = os.path.isdir("/sys/bus/event_source/devices/kprobe")
    feature = features.probe("tracing.kprobe")
    assert feature.available is present
    if not present:
        assert feature.errno == errno.ENOENT
        assert "CONFIG_KPROBES" in feature.reason


def test_a_missing_feature_raises_an_error_that_names_it() -> None:
    missing = [f for f in features.probe_all() if not f.available]
    if not missing:
        pytest.skip("this kernel has every feature pykex probes")
    feature = missing[0]
    with pytest.raises(FeatureUnavailableError) as caught:
        features.require(feature.name)
    error = caught.value
    assert isinstance(error, NotSupportedError)
    assert error.feature == feature.name
    assert error.errno == feature.errno != 0
    assert str(error) == (
        f"this kernel does not support {feature.description} ({feature.name}): {feature.reason}"
    )


def test_fentry_result_is_explained_when_missing() -> None:
    feature = features.probe("tracing.fentry")
    if feature.available:
        return
    assert feature.reason.startswith("BPF_PROG_LOAD: ")
    assert errno.errorcode[feature.errno] in feature.reason


def test_probe_reports_the_kernels_refusal() -> None:
    """A probe is only as good as its attempt: make the kernel say no and watch it say so."""

    def refuse_prog_load(cmd: int, attr: ctypes.Structure) -> int:
        return -errno.EINVAL if cmd == Cmd.PROG_LOAD else syscall._kernel_backend(cmd, attr)

    with syscall.override_backend(refuse_prog_load):
        refused = features.probe.__wrapped__("instruction.may_goto")
    assert refused.available is False
    assert refused.errno == errno.EINVAL
    assert refused.reason == "BPF_PROG_LOAD: EINVAL (Invalid argument)"
    assert features.probe.__wrapped__("instruction.may_goto").available


def test_iterator_kfuncs_need_both_btf_and_a_real_load() -> None:
    def refuse_prog_load(cmd: int, attr: ctypes.Structure) -> int:
        return -errno.EACCES if cmd == Cmd.PROG_LOAD else syscall._kernel_backend(cmd, attr)

    features._iterator_load_failure.cache_clear()
    try:
        with syscall.override_backend(refuse_prog_load):
            refused = features.probe.__wrapped__("kfunc.bpf_iter_num_next")
            throw = features.probe.__wrapped__("kfunc.bpf_throw")
    finally:
        features._iterator_load_failure.cache_clear()
    assert not refused.available
    assert throw.available  # existence in vmlinux BTF is enough for the others


def test_feature_serialises_for_json() -> None:
    document = json.loads(json.dumps([f.as_dict() for f in features.probe_all()]))
    assert {"name", "category", "description", "available", "errno", "reason"} <= set(
        document[0]
    )
