"""The suite-wide leak check fails a run that leaves kernel or network objects behind.

Each test runs a tiny suite in a subprocess with the real hooks of
``tests/conftest.py``, then removes whatever that suite leaked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pykex.kernel.fs import BPFFS_ROOT

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

REPO = Path(__file__).resolve().parent.parent
TAG = f"lk{os.getpid() % 100000}"
NETNS, VETH, PIN = f"{TAG}ns", f"{TAG}a", f"{TAG}pin"

CONFTEST = "from tests.conftest import pytest_sessionfinish, pytest_sessionstart  # noqa: F401\n"

# Creates one of each kind of object the check watches; cleans up only if asked.
SUITE = textwrap.dedent(
    f"""
    import os, struct, subprocess
    from pykex.kernel import Program, ProgType, syscall
    from pykex.kernel.fs import pin_path
    from pykex.kernel.uapi import MapType

    CLEAN_UP = {{clean_up}}
    RETURN_0 = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    KEPT = []

    def test_creates_one_of_everything():
        subprocess.run(["ip", "netns", "add", "{NETNS}"], check=True)
        subprocess.run(["ip", "link", "add", "{VETH}", "type", "veth",
                        "peer", "name", "{VETH}x"], check=True)
        with syscall.map_create(MapType.ARRAY, 4, 4, 1, name="leaky") as array:
            syscall.obj_pin(int(array), pin_path("{PIN}"))
        program = Program.load(ProgType.RAW_TRACEPOINT, RETURN_0, name="leaky")
        KEPT.append((program, syscall.raw_tracepoint_open("sched_switch", int(program.fd))))
        if CLEAN_UP:
            for program, link in KEPT:
                link.close()
                program.close()
            os.unlink(pin_path("{PIN}"))
            subprocess.run(["ip", "link", "del", "{VETH}"], check=True)
            subprocess.run(["ip", "netns", "del", "{NETNS}"], check=True)
    """
)


def run_suite(tmp_path: Path, clean_up: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_suite.py").write_text(SUITE.format(clean_up=clean_up))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
    finally:
        # Whatever the suite did, leave the machine as it was.
        subprocess.run(["ip", "link", "del", VETH], capture_output=True)
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
        Path(BPFFS_ROOT, PIN).unlink(missing_ok=True)


def test_a_leaking_suite_fails_and_names_each_leak(tmp_path: Path) -> None:
    result = run_suite(tmp_path, clean_up=False)
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "1 passed" in output
    assert "LEAK CHECK FAILED" in output
    assert f"network namespace {NETNS}" in output
    assert f"veth interface {VETH}" in output
    assert f"pin {BPFFS_ROOT}/{PIN}" in output
    assert "(raw_tracepoint, program id" in output


def test_a_tidy_suite_passes(tmp_path: Path) -> None:
    result = run_suite(tmp_path, clean_up=True)
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.OK, output
    assert "LEAK CHECK" not in output


# Run inside a private namespace whose own interface (one end of a veth pair) is eth0.
XDP_CHECK = textwrap.dedent(
    """
    import socket, struct, subprocess
    from pykex.kernel import Program, ProgType, syscall
    from pykex.kernel.uapi import AttachType, XdpFlag
    from tests import leakcheck

    subprocess.run(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer"],
                   check=True)
    print("before:", leakcheck.xdp_on_machine_interface())
    code = struct.pack("<BBhi", 0xB7, 0, 0, 2) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    with Program.load(ProgType.XDP, code, name="on_eth0") as program:
        ifindex = socket.if_nametoindex("eth0")
        with syscall.link_create(int(program.fd), ifindex, AttachType.XDP,
                                 flags=XdpFlag.SKB_MODE):
            print("during:", leakcheck.xdp_on_machine_interface())
    """
)


def test_an_xdp_program_on_eth0_is_reported() -> None:
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    try:
        result = subprocess.run(
            ["ip", "netns", "exec", NETNS, sys.executable, "-c", XDP_CHECK],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True, text=True, timeout=60,
        )
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], check=True)
    assert result.returncode == 0, result.stderr
    before, during = result.stdout.splitlines()
    assert before == "before: None"
    assert during.startswith("during: XDP program on eth0: ")
    assert '"prog"' in during
