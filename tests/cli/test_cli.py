"""The ``pykex`` command: subcommands, output formats, and how errors reach the user."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pykex.cli import main as cli
from pykex.cli.demo import DEMO_PREFIX, UDP_PAYLOAD
from pykex.kernel import BPFError, PermissionDeniedError
from pykex.testing import namespaces

PYKEX = [sys.executable, "-m", "pykex.cli.main"]


def pykex(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYKEX_DEBUG": ""}
    return subprocess.run(
        [*PYKEX, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def demo_leftovers() -> set[str]:
    """Namespaces and interfaces named like the demo's (other tests may run meanwhile)."""
    names = set(namespaces()) | set(os.listdir("/sys/class/net"))
    return {name for name in names if name.startswith(DEMO_PREFIX)}


# -- in-process: dispatch and error reporting -------------------------------------------------


def failing_subcommand(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def run(args: argparse.Namespace) -> int:
        raise error

    monkeypatch.setattr("pykex.cli.version.run", run)
    monkeypatch.delenv("PYKEX_DEBUG", raising=False)


def test_every_subcommand_module_is_registered() -> None:
    parser = cli.build_parser()
    choices = next(
        a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    assert set(choices) == {name.replace("_", "-") for name in cli.SUBCOMMANDS}


def test_no_subcommand_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "commands:" in capsys.readouterr().err


def test_bpf_error_prints_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing_subcommand(monkeypatch, BPFError("BPF_MAP_CREATE", 22, "map type lpm_trie"))
    assert cli.main(["version"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "pykex: error: BPF_MAP_CREATE: Invalid argument (map type lpm_trie)\n"
    )


def test_permission_error_names_the_capability(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing_subcommand(monkeypatch, PermissionDeniedError("BPF_PROG_LOAD", 1, "needs CAP_BPF"))
    assert cli.main(["version"]) == 1
    assert "CAP_BPF" in capsys.readouterr().err


def test_unexpected_errors_are_reported_as_bugs_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing_subcommand(monkeypatch, RuntimeError("wires crossed"))
    assert cli.main(["version"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pykex: error: internal error: RuntimeError: wires crossed")
    assert err.count("\n") == 1


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    failing_subcommand(monkeypatch, BPFError("BPF_MAP_CREATE", 22))
    argv = ["version"]
    if how == "flag":
        argv.insert(0, "--debug")
    else:
        monkeypatch.setenv("PYKEX_DEBUG", "1")
    with pytest.raises(BPFError):
        cli.main(argv)


def test_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing_subcommand(monkeypatch, KeyboardInterrupt())
    assert cli.main(["version"]) == 130
    assert capsys.readouterr().err == "pykex: interrupted\n"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    version_line = r"pykex \S+ \(Python 3\.\d+\.\d+, Linux \S+ \S+\)\n"
    assert re.fullmatch(version_line, capsys.readouterr().out)


# -- the installed command against the kernel -------------------------------------------------


@pytest.mark.kernel
def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "pykex"
    result = subprocess.run([str(script), "version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("pykex ")


@pytest.mark.kernel
def test_features_json_lists_xdp_as_available() -> None:
    result = pykex("features", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["kernel"] == os.uname().release
    xdp = document["features"]["program.xdp"]
    assert xdp == {
        "name": "program.xdp", "category": "program", "description": "xdp programs",
        "available": True, "errno": 0, "reason": "",
    }  # fmt: skip
    for feature in document["features"].values():
        assert feature["available"] or feature["reason"]


@pytest.mark.kernel
def test_features_table_is_grouped_and_explains_gaps() -> None:
    result = pykex("features")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    headings = ["Program types", "Map types", "Attachment", "Instructions", "Kfuncs", "BTF"]
    positions = [out.find(h.replace("Kfuncs", "Kernel functions")) for h in headings]
    assert -1 not in positions
    assert positions == sorted(positions)
    assert re.search(r"✓ .*\bxdp\b", out)
    for line in out.splitlines():
        if line.lstrip().startswith("✗"):
            assert len(line.split(None, 2)) == 3, f"no reason given: {line!r}"
    assert re.search(r"^\d+ of \d+ features available$", out, re.MULTILINE)


# -- the demo ----------------------------------------------------------------------------------


def counted(output: str) -> dict[str, tuple[int, int]]:
    """Protocol -> (packets, bytes) from the demo's table."""
    table = output.split("What the program counted:", 1)[1].split("\n[", 1)[0]
    rows = {}
    for line in table.strip().splitlines()[1:]:
        name, packets, size = line.rsplit(None, 2)
        rows[name.strip()] = (int(packets), int(size))
    return rows


@pytest.mark.kernel
@pytest.mark.netns
def test_demo_counts_the_packets_it_sends_and_leaves_nothing_behind() -> None:
    before = demo_leftovers()
    started = time.monotonic()
    result = pykex("demo", "--pings", "7", "--datagrams", "13")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    rows = counted(out)
    # ping's 84-byte IPv4 echo requests in 98-byte frames; UDP frames carry
    # Ethernet (14), IPv4 (20) and UDP (8) headers before the payload.
    assert rows["ICMP"] == (7, 7 * 98)
    assert rows["UDP"] == (13, 13 * (14 + 20 + 8 + len(UDP_PAYLOAD)))
    assert re.search(r"verifier: \d+ instructions verified; \d+ bytes after rewrites, "
                     r"\d+ bytes of native code", out)  # fmt: skip
    # Once the sender is blocked, the firewall drops every ping.
    assert "7 more pings sent, 0 answered: dropped by XDP" in out
    # The truncated frame's exception comes back as a traceback with its line.
    assert "ip = ctx.packet.read(Ethernet.size, IPv4)" in out
    assert "IndexError: packet offset 14 + 20 > length 20" in out
    # opensnoop, run by the demo, saw cat open the note the demo wrote.
    note = re.search(r"while the demo runs: cat (\S+)", out)
    assert note is not None
    assert re.search(rf"^\s+\d+\s+cat\s+\d+\s+0 {re.escape(note[1])}$", out, re.MULTILINE)
    assert "nothing is left behind" in out
    assert demo_leftovers() <= before  # nothing new left behind
    assert elapsed < 30


@pytest.mark.kernel
@pytest.mark.netns
def test_demo_cleans_up_after_ctrl_c() -> None:
    before = demo_leftovers()
    demo = subprocess.Popen(
        [*PYKEX, "demo", "--pings", "3000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            if line.startswith("[5/7]"):
                break
        time.sleep(0.5)  # well inside the pings
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, err
    assert err.strip().splitlines() == ["pykex: interrupted"]
    assert "removed the veth pair and the namespace" in out
    assert demo_leftovers() <= before  # nothing new left behind


def test_bad_demo_arguments_are_rejected_by_the_parser() -> None:
    result = pykex("demo", "--pings", "-3")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "pykex demo: error: argument --pings: -3 is negative"
    )


@pytest.mark.kernel
@pytest.mark.netns
def test_demo_failing_midway_reports_one_line_and_cleans_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(program: object, interface: str) -> None:
        raise BPFError("BPF_LINK_CREATE", 16, f"{interface} already has an XDP program attached")

    monkeypatch.setattr("pykex.runtime.extension.LoadedProgram.attach_xdp", refuse)
    monkeypatch.delenv("PYKEX_DEBUG", raising=False)
    before = demo_leftovers()
    assert cli.main(["demo"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("pykex: error: BPF_LINK_CREATE: Device or resource busy (")
    assert captured.err.count("\n") == 1
    assert "removed the veth pair and the namespace" in captured.out
    assert demo_leftovers() <= before  # nothing new left behind
