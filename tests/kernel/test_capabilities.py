"""Missing privileges and missing kernel features produce messages that name them.

The unprivileged side runs in a subprocess whose capabilities were dropped
with setpriv, once as ``nobody`` and once as root without CAP_BPF and
CAP_SYS_ADMIN (root alone must not be mistaken for the capability).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pykex.kernel import NotSupportedError, Program, ProgType, features, syscall
from pykex.kernel.features import FeatureUnavailableError
from pykex.kernel.maps import LpmTrieMap
from pykex.kernel.uapi import Cmd, MapType
from pykex.layout import u32

pytestmark = pytest.mark.kernel

SRC = str(Path(__file__).resolve().parents[2] / "src")

DROPPED = {
    "nobody": ["--reuid=nobody", "--regid=nogroup", "--clear-groups",
               "--inh-caps=-all", "--bounding-set=-all"],
    "root without CAP_BPF": ["--inh-caps=-all",
                             "--bounding-set=-bpf,-sys_admin,-perfmon,-net_admin"],
}  # fmt: skip

ATTEMPTS = textwrap.dedent(
    """
    import json, struct
    from pykex.kernel import PermissionDeniedError, Program, ProgType, syscall
    from pykex.kernel.uapi import MapType

    RETURN_2 = struct.pack("<BBhi", 0xB7, 0, 0, 2) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    attempts = {
        "map": lambda: syscall.map_create(MapType.HASH, 4, 8, 16, name="denied"),
        "program": lambda: Program.load(ProgType.XDP, RETURN_2, name="denied"),
    }
    outcome = {}
    for what, attempt in attempts.items():
        try:
            attempt()
            outcome[what] = "created"
        except PermissionDeniedError as error:
            outcome[what] = str(error)
    print(json.dumps(outcome))
    """
)


def run_without_capabilities(how: str, *argv: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    env = {**os.environ, "PYTHONPATH": SRC, "PYKEX_DEBUG": ""}
    return subprocess.run(
        ["setpriv", *DROPPED[how], sys.executable, *argv],
        capture_output=True, text=True, env=env, timeout=60, cwd="/",
    )


@pytest.mark.parametrize("how", DROPPED)
def test_map_and_program_creation_name_the_missing_capability(how: str) -> None:
    result = run_without_capabilities(how, "-c", ATTEMPTS)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["map"].startswith("BPF_MAP_CREATE: Operation not permitted")
    assert outcome["program"].startswith("BPF_PROG_LOAD: Operation not permitted")
    for message in outcome.values():
        assert "CAP_BPF" in message


def test_feature_probes_without_capabilities_say_what_is_missing() -> None:
    result = run_without_capabilities("nobody", "-m", "pykex.cli.main", "features", "--json")
    assert result.returncode == 0, result.stderr
    xdp = json.loads(result.stdout)["features"]["program.xdp"]
    assert xdp["available"] is False
    assert "CAP_BPF" in xdp["reason"]


def test_cli_without_capabilities_prints_one_line_naming_cap_bpf() -> None:
    result = run_without_capabilities("root without CAP_BPF", "-m", "pykex.cli.main", "demo")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pykex: error: ")
    assert "CAP_BPF" in lines[0]
    assert "Traceback" not in result.stderr


def test_loading_an_unsupported_program_type_names_it() -> None:
    missing = [
        f for f in features.probe_all()
        if f.category == "program" and not f.available and f.errno != 1  # not EPERM
    ]  # fmt: skip
    if not missing:
        pytest.skip("this kernel supports every program type it can load without a target")
    prog_type = ProgType[missing[0].name.split(".", 1)[1].upper()]
    code = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
    with pytest.raises(NotSupportedError) as caught:
        Program.load(prog_type, code)
    assert caught.value.feature == f"program type {prog_type.name.lower()}"
    assert f"this kernel does not support program type {prog_type.name.lower()}" in str(
        caught.value
    )


def test_creating_a_map_kind_the_kernel_lacks_names_it() -> None:
    """Every map kind exists on this kernel, so one that lacks LPM tries is played."""

    def kernel_without_lpm_tries(cmd: int, attr: ctypes.Structure) -> int:
        if cmd == Cmd.MAP_CREATE and attr.map_type == MapType.LPM_TRIE:
            return -errno.EINVAL
        return syscall._kernel_backend(cmd, attr)

    with syscall.override_backend(kernel_without_lpm_tries), pytest.raises(
        NotSupportedError
    ) as caught:
        LpmTrieMap.create(u32, u32, 16, name="routes")
    assert caught.value.feature == "map type lpm_trie"
    assert "this kernel does not support map type lpm_trie" in str(caught.value)


def test_requiring_a_missing_feature_names_it() -> None:
    feature = features.probe("tracing.kprobe")
    if feature.available:
        pytest.skip("this kernel has kprobes")
    with pytest.raises(FeatureUnavailableError, match=r"kprobes through perf events"):
        features.require("tracing.kprobe")
