"""Each tool of tools/ against a workload the test starts, checked on what it reports.

Tools whose kernel side needs a language feature that is not there yet are
marked ``xfail(strict=True)`` with the feature: they start passing (and the
mark must go) the day the feature lands.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pykex.testing import VethNamespace

from .conftest import run_tool

pytestmark = pytest.mark.kernel



def paused_child(code: str) -> subprocess.Popen[bytes]:
    """A Python child that runs ``code`` once a line arrives on its stdin, so a
    tool can be told its pid before it does anything."""
    return subprocess.Popen([sys.executable, "-c", f"import sys; sys.stdin.readline()\n{code}"],
                            stdin=subprocess.PIPE)


def go(child: subprocess.Popen[bytes], *, wait: bool = True) -> None:
    assert child.stdin is not None
    child.stdin.write(b"go\n")
    child.stdin.flush()
    if wait:
        child.wait(timeout=20)


# -- tools that run today ------------------------------------------------------------------


def test_syscount_counts_a_known_number_of_calls_of_one_process() -> None:
    child = paused_child("import os\nfor _ in range(321): os.getpriority(os.PRIO_PROCESS, 0)")
    try:
        result = run_tool("syscount", "-p", str(child.pid), "-L", "--json", "--duration", "2",
                          workload=lambda: go(child))
    finally:
        child.kill()
        child.wait()
    rows = {row["syscall"]: row for row in result.json_lines()}
    assert rows["getpriority"]["count"] == 321
    assert rows["getpriority"]["time"] > 0
    assert "write" not in rows  # another process's calls are filtered out in the kernel


def test_syscount_per_process_mode_names_the_process() -> None:
    # It stays alive: like BCC's, the COMM column is read from /proc at print time.
    child = paused_child("import os, time\nfor _ in range(50): os.getppid()\ntime.sleep(30)")
    try:
        result = run_tool("syscount", "-P", "-p", str(child.pid), "--duration", "2",
                          workload=lambda: go(child, wait=False))
    finally:
        child.kill()
        child.wait()
    lines = result.stdout.splitlines()
    assert any(line.split() == ["PID", "COMM", "COUNT"] for line in lines)
    row = next(line.split() for line in lines if line.startswith(str(child.pid)))
    assert row[1] == "python3" or row[1].startswith("python")
    assert int(row[2]) >= 50


def test_runqlat_histogram_counts_each_wakeup_of_a_sleeping_process() -> None:
    child = paused_child("import time\nfor _ in range(200): time.sleep(0.001)")
    try:
        result = run_tool("runqlat", "-p", str(child.pid), "--json", "--duration", "2.5",
                          workload=lambda: go(child))
    finally:
        child.kill()
        child.wait()
    [hist] = result.json_lines()
    assert hist["val_type"] == "usecs"
    total = sum(row["count"] for row in hist["data"])
    assert 200 <= total <= 260  # one per wakeup, a few more for preemptions


def test_runqlat_prints_the_bcc_histogram_layout() -> None:
    result = run_tool("runqlat", "-m", "--duration", "1",
                      workload=lambda: [time.sleep(0.001) for _ in range(50)])
    assert "     msecs               : count     distribution" in result.stdout
    assert "0 -> 1" in result.stdout


def test_biolatency_sees_direct_writes_on_a_block_device(tmp_path_factory: pytest.TempPathFactory
                                                         ) -> None:
    directory = "/var/tmp"
    if os.statvfs(directory).f_fsid == 0 or not os.path.exists("/sys/block"):
        pytest.skip("no block device behind /var/tmp")
    path = os.path.join(directory, f"pykex-biolatency-{os.getpid()}")

    def write_direct() -> None:
        block = bytes(4096)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
        try:
            import mmap

            buffer = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
            buffer.write(block)
            for _ in range(64):
                os.pwrite(fd, buffer, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    try:
        result = run_tool("biolatency", "-D", "--json", "--duration", "2", workload=write_direct)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    disks = result.json_lines()
    if not disks:
        pytest.skip("no block I/O events arrived (the file system may not reach a disk)")
    total = sum(row["count"] for disk in disks for row in disk["data"])
    assert total >= 64
    assert all(disk["val_type"] == "usecs" and disk["disk"] for disk in disks)


@pytest.mark.netns
def test_xdpdrop_counts_per_protocol_and_drops_the_blocked_one() -> None:
    with VethNamespace(prefix="pkxt") as net:
        received = []

        def traffic() -> None:
            received.append(net.ping(10, interval=0.02, timeout=1))
            net.send_udp(25, 9)

        result = run_tool("xdpdrop", "--iface", net.host_ifname, "-d", "icmp", "-i", "0.5",
                          "--json", "--duration", "3", workload=traffic)
    assert received == [0]  # every echo request was dropped before the stack saw it
    last = {}
    for row in result.json_lines():
        last[row["name"]] = row
    assert last["ICMP"]["packets"] >= 10 and last["ICMP"]["dropped"] is True
    assert last["UDP"]["packets"] >= 25 and last["UDP"]["dropped"] is False


# -- tools waiting for language features -----------------------------------------------------


def test_killsnoop_reports_a_signal_sent_to_a_child() -> None:
    child = subprocess.Popen(["sleep", "30"])

    def kill() -> None:
        os.kill(child.pid, signal.SIGUSR1)

    result = run_tool("killsnoop", "-p", str(os.getpid()), "--json", "--duration", "1.5",
                      workload=kill)
    child.wait()
    rows = [row for row in result.json_lines() if row["tpid"] == child.pid]
    assert rows and rows[0]["sig"] == signal.SIGUSR1 and rows[0]["result"] == 0
    assert rows[0]["pid"] == os.getpid()


def test_opensnoop_reports_the_file_a_process_opened(tmp_path: os.PathLike[str]) -> None:
    target = os.path.join(tmp_path, "opened-by-the-test")
    child = paused_child(f"open({target!r}, 'w').close()\ntry:\n open({target!r} + '.missing')\n"
                         "except OSError: pass")
    try:
        result = run_tool("opensnoop", "-p", str(child.pid), "--json", "--duration", "2",
                          workload=lambda: go(child))
    finally:
        child.kill()
        child.wait()
    rows = {row["path"]: row for row in result.json_lines()}
    assert rows[target]["fd"] >= 0 and rows[target]["err"] == 0
    assert rows[target + ".missing"]["fd"] == -1 and rows[target + ".missing"]["err"] == 2


def test_exitsnoop_reports_exit_codes_and_signals() -> None:
    def workload() -> None:
        subprocess.run(["sh", "-c", "exit 3"])
        child = subprocess.Popen(["sleep", "30"])
        child.kill()
        child.wait()

    result = run_tool("exitsnoop", "-x", "--json", "--duration", "2", workload=workload)
    codes = {row["exit_code"] for row in result.json_lines()
             if row["ppid"] == os.getpid()}
    assert "code 3" in codes and "signal 9 (KILL)" in codes


def test_execsnoop_reports_a_command_and_its_arguments() -> None:
    def workload() -> None:
        subprocess.run(["/bin/echo", "pykex-execsnoop", "second-arg"], capture_output=True)

    result = run_tool("execsnoop", "--json", "--duration", "2", workload=workload)
    rows = [row for row in result.json_lines() if "pykex-execsnoop" in row["args"]]
    assert rows[0]["args"] == "/bin/echo pykex-execsnoop second-arg"
    assert rows[0]["ppid"] == os.getpid() and rows[0]["ret"] == 0


@pytest.mark.netns
def test_tcpstates_follows_a_connection_through_its_states() -> None:
    with VethNamespace(prefix="pkxt") as net:
        server = socket.create_server((net.host_address, 0))
        port = server.getsockname()[1]

        def connect() -> None:
            net.run([sys.executable, "-c", "import socket,sys; socket.create_connection("
                     f"({net.host_address!r}, {port})).close()"])
            accepted, _ = server.accept()
            accepted.close()

        try:
            result = run_tool("tcpstates", "-L", str(port), "--json", "--duration", "2",
                              workload=connect)
        finally:
            server.close()
    changes = [(row["oldstate"], row["newstate"]) for row in result.json_lines()
               if row["lport"] == port]
    assert ("SYN_RECV", "ESTABLISHED") in changes or ("LISTEN", "SYN_RECV") in changes
    assert any(new == "CLOSE" for _, new in changes)


def test_profile_samples_a_busy_process_with_its_stacks() -> None:
    child = paused_child("import time\nend = time.time() + 1.5\nwhile time.time() < end: pass")
    try:
        result = run_tool("profile", "-p", str(child.pid), "-F", "99", "--json",
                          "--duration", "2", workload=lambda: go(child))
    finally:
        child.kill()
        child.wait()
    stacks = result.json_lines()
    assert sum(stack["count"] for stack in stacks) >= 50
    assert any(stack["user"] for stack in stacks)
