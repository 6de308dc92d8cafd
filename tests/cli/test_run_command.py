"""``pykex run``: what it streams, how it ends, and one clear line per user error."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from pykex.lang import check
from pykex.lang.module import UserSpace

PYKEX = [sys.executable, "-m", "pykex.cli.main", "run"]
ROOT = Path(__file__).resolve().parents[2]


def pykex_run(*args: str, user: str | None = None, timeout: float = 60
              ) -> subprocess.CompletedProcess[str]:
    command = [*PYKEX, *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                   "--inh-caps=-all", *command]
    env = {**os.environ, "PYKEX_DEBUG": "", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)


def write(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    path.chmod(0o644)
    return str(path)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    # A checker error keeps its own "file:line:col: error:" form.
    assert re.match(r"pykex: (error: |\S+:\d+:\d+: error: )", lines[0]), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


COUNTER = """
    from pykex import HashMap, TracepointContext, current_pid, tracepoint, u32, u64

    calls = HashMap[u32, u64](max_entries=1024)

    @tracepoint("syscalls/sys_enter_getppid")
    def count(ctx: TracepointContext) -> int:
        calls[current_pid()] = calls.setdefault(current_pid(), u64(0)) + 1
        return 0
"""

TOOL_WITH_USERSPACE = """
    \"\"\"A tool with options and a main.\"\"\"
    from pykex import TracepointContext, current_pid, tracepoint, u32
    import argparse

    target: u32 = 0

    @tracepoint("syscalls/sys_enter_getppid")
    def probe(ctx: TracepointContext) -> int:
        if current_pid() == target:
            print("seen", current_pid())
        return 0

    def describe(value: int) -> str:
        return f"target {value}"

    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--target", type=int, help="the pid to watch")

    def main(ext, args) -> None:
        print(describe(args.target))
"""


# -- the tool module ------------------------------------------------------------------------


def test_the_compiler_sees_the_module_without_its_userspace_part() -> None:
    import ast

    userspace = UserSpace.of(ast.parse(textwrap.dedent(TOOL_WITH_USERSPACE)))
    left = {getattr(node, "name", None) or ast.unparse(node) for node in userspace.statements}
    assert {"import argparse", "main", "options"} <= left
    assert "describe" in left  # only main uses it
    assert "probe" not in left and "target: u32 = 0" not in left
    assert check(textwrap.dedent(TOOL_WITH_USERSPACE), "tool.py") == []


def test_a_function_a_program_uses_stays_kernel_code() -> None:
    import ast

    tree = ast.parse(textwrap.dedent("""
        def shared(x: u32) -> u32:
            return x
        @tracepoint("a/b")
        def program(ctx: TracepointContext) -> int:
            return shared(1)
        def main(ext, args):
            shared(2)
    """))
    assert UserSpace.of(tree).functions == {"main"}


# -- user errors: one line, status 1 -----------------------------------------------------------


def test_missing_file() -> None:
    line = one_error_line(pykex_run("no/such/tool.py"))
    assert "no/such/tool.py: no such file" in line


def test_invalid_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.py", """
        from pykex import TracepointContext, tracepoint

        @tracepoint("syscalls/sys_enter_getppid")
        def probe(ctx: TracepointContext) -> int:
            return ctx.no_such_field
    """)
    line = one_error_line(pykex_run(path))
    assert f"{path}:6:" in line and "no_such_field" in line


def test_bad_tool_option(tmp_path: Path) -> None:
    path = write(tmp_path, "tool.py", TOOL_WITH_USERSPACE)
    line = one_error_line(pykex_run(path, "--target", "many"))
    assert "--target" in line and "invalid int value" in line


@pytest.mark.kernel
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop privileges")
def test_no_privileges() -> None:
    # A directory the unprivileged user can read (pytest's own is private to root).
    with tempfile.TemporaryDirectory(prefix="pykex-run-") as directory:
        os.chmod(directory, 0o755)
        path = write(Path(directory), "counter.py", COUNTER)
        line = one_error_line(pykex_run(path, "--duration", "1", user="65534"))
    assert "needs root" in line


@pytest.mark.kernel
def test_xdp_needs_an_interface_and_an_existing_one() -> None:
    line = one_error_line(pykex_run("tools/xdpdrop.py", "--duration", "1"))
    assert "give the network interface" in line and "--iface" in line
    line = one_error_line(pykex_run("tools/xdpdrop.py", "--iface", "pkxnosuch0",
                                    "--duration", "1"))
    assert "no network interface named 'pkxnosuch0'" in line


UPROBE = """
    from pykex import ProbeContext, uprobe

    @uprobe("{binary}", "{symbol}")
    def probe(ctx: ProbeContext) -> int:
        return 0
"""


@pytest.mark.kernel
def test_uprobe_binary_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "probe.py", UPROBE.format(binary="/bin/true", symbol="main"))
    line = one_error_line(pykex_run(path, "--binary", "/no/such/binary", "--duration", "1"))
    assert "--binary /no/such/binary: no such file" in line


@pytest.mark.kernel
def test_uprobe_symbol_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "probe.py", UPROBE.format(binary="/bin/true",
                                                     symbol="pykex_no_such_symbol"))
    line = one_error_line(pykex_run(path, "--duration", "1"))
    assert "'pykex_no_such_symbol' not found in /bin/true" in line


@pytest.mark.kernel
def test_program_type_this_kernel_lacks(tmp_path: Path) -> None:
    if os.path.exists("/sys/bus/event_source/devices/kprobe"):
        pytest.skip("this kernel has kprobes")
    path = write(tmp_path, "probe.py", """
        from pykex import ProbeContext, kprobe

        @kprobe("do_nanosleep")
        def probe(ctx: ProbeContext) -> int:
            return 0
    """)
    line = one_error_line(pykex_run(path, "--duration", "1"))
    assert "this kernel does not support kprobes" in line


# -- running --------------------------------------------------------------------------------------


STREAMER = """
    from pykex import HashMap, RingBuffer, Struct, TracepointContext, current_pid, tracepoint
    from pykex import u32, u64

    class Event(Struct):
        pid: u32
        sig: u32

    events = RingBuffer(size=4096)
    kills = HashMap[u32, u64](max_entries=64)  # by signal
    watched: u32 = 0

    @tracepoint("syscalls/sys_enter_kill")
    def on_kill(ctx: TracepointContext) -> int:
        if current_pid() != watched:
            return 0
        kills[u32(ctx.sig)] = kills.setdefault(u32(ctx.sig), u64(0)) + 1
        assert ctx.sig != 0, "signal 0 only probes"
        print("kill with signal", u32(ctx.sig))
        events.output(Event(pid=current_pid(), sig=u32(ctx.sig)))
        return 0
"""


def start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYKEX_DEBUG": "", "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([*PYKEX, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, cwd=ROOT)
    assert process.stderr is not None
    line = process.stderr.readline()  # "Running ... Hit Ctrl-C to end." once attached
    assert "Hit Ctrl-C" in line, line + process.stderr.read()
    return process


@pytest.mark.kernel
def test_streams_events_trace_lines_and_tracebacks_then_prints_maps(tmp_path: Path) -> None:
    path = write(tmp_path, "streamer.py", STREAMER)
    process = start(path, "--duration", "3", "--json", "--watched", str(os.getpid()))
    try:
        for sig in (0, signal.SIGCONT, signal.SIGCONT):
            os.kill(os.getpid(), sig)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    objects = [json.loads(line) for line in out.splitlines()]
    events = [o for o in objects if o.get("ring") == "events"]
    assert [e["sig"] for e in events] == [signal.SIGCONT, signal.SIGCONT]
    assert all(e["pid"] == os.getpid() for e in events)
    traces = [o["trace"] for o in objects if "trace" in o]
    assert traces.count(f"kill with signal {int(signal.SIGCONT)}") == 2
    [error] = [o for o in objects if "exception" in o]
    assert error["exception"] == "AssertionError" and "signal 0 only probes" in error["message"]
    assert 'streamer.py", line 18, in on_kill' in error["traceback"]
    [kills] = [o for o in objects if o.get("map") == "kills"]
    assert kills["entries"] == [{"key": int(signal.SIGCONT), "value": 2},
                                {"key": 0, "value": 1}]


@pytest.mark.kernel
def test_sigterm_detaches_and_prints_the_maps_for_people(tmp_path: Path) -> None:
    path = write(tmp_path, "counter.py", COUNTER)
    process = start(path)
    for _ in range(7):
        os.getppid()
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert "calls:" in lines
    header = lines[lines.index("calls:") + 1]
    assert header.split() == ["KEY", "VALUE"]
    row = next(line.split() for line in lines if line.split()[:1] == [str(os.getpid())])
    assert int(row[1]) >= 7


@pytest.mark.kernel
def test_options_set_globals_and_main_takes_over(tmp_path: Path) -> None:
    path = write(tmp_path, "tool.py", TOOL_WITH_USERSPACE)
    result = pykex_run(path, "--duration", "0.5", "--target", "4242")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "target 4242"


def test_tool_help_lists_its_own_options(tmp_path: Path) -> None:
    path = write(tmp_path, "tool.py", TOOL_WITH_USERSPACE)
    result = pykex_run(path, "--help")
    assert result.returncode == 0
    assert "--target TARGET" in result.stdout and "--duration S" in result.stdout
    assert "A tool with options and a main." in result.stdout


def test_a_comment_declares_a_map_a_histogram(tmp_path: Path) -> None:
    from pykex.runtime.histogram import Log2Histogram
    from pykex.runtime.runner import Tool

    path = write(tmp_path, "hist.py", """
        from pykex import ArrayMap, TracepointContext, atomic_add, tracepoint, u64

        latency = ArrayMap[u64](max_entries=64)  # histogram: log2 usecs
        other = ArrayMap[u64](max_entries=4)

        @tracepoint("syscalls/sys_enter_getppid")
        def probe(ctx: TracepointContext) -> int:
            atomic_add(latency[3], 1)
            return 0
    """)
    histograms = Tool.read(path).histograms
    assert set(histograms) == {"latency"}
    assert histograms["latency"].kind is Log2Histogram and histograms["latency"].unit == "usecs"
