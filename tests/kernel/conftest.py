"""Fixtures for tests that attach programs to a real kernel.

Everything here cleans up after itself: networks, cgroups, pins and child
processes are removed even when the test fails.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykex.bpf import assemble, encode
from pykex.kernel import Program, ProgType
from pykex.kernel.fs import ensure_bpffs
from pykex.kernel.maps import ArrayMap, Map, PerCpuHashMap
from pykex.kernel.uapi import AttachType
from pykex.layout import u32, u64
from pykex.testing import VethNamespace

CGROUP2_ROOT = Path("/sys/fs/cgroup/unified")

# A program for tracing and uprobe tests. Each mode prints "ready <SYS_getppid>"
# and waits for a line on stdin, so a test can attach to a process that has
# finished starting up (the dynamic loader opens files too).
TARGET_SOURCE = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((noinline)) int pkx_probed(int x) {
    __asm__ volatile("" ::: "memory");
    return x + 1;
}

static void wait_for_go(void) {
    char line[16];
    printf("ready %d\n", SYS_getppid);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int n = atoi(argv[argc - 1]);
    wait_for_go();
    if (!strcmp(argv[1], "call")) {
        long total = 0;
        for (int i = 0; i < n; i++) total += pkx_probed(i);
        printf("%ld\n", total);
    } else if (!strcmp(argv[1], "open") && argc == 4) {
        for (int i = 0; i < n; i++) {
            int fd = open(argv[2], O_RDONLY);
            if (fd < 0) return 1;
            close(fd);
        }
    } else if (!strcmp(argv[1], "getppid")) {
        for (int i = 0; i < n; i++) syscall(SYS_getppid);
    } else {
        return 2;
    }
    return 0;
}
"""


@pytest.fixture
def veth() -> Iterator[VethNamespace]:
    """A fresh namespace + veth pair; programs go on ``veth.host_ifname``."""
    with VethNamespace() as network:
        yield network


@pytest.fixture(scope="session")
def target_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled :data:`TARGET_SOURCE` (its path is unique to this test run)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the probe target")
    directory = tmp_path_factory.mktemp("target")
    source = directory / "target.c"
    source.write_text(TARGET_SOURCE)
    binary = directory / "pkx_target"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


class Target:
    """A running :data:`TARGET_SOURCE` process, stopped before its work."""

    def __init__(self, binary: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().split()
        assert ready[:1] == [b"ready"], f"target did not start: {ready!r}"
        self.pid = self.process.pid
        self.getppid_number = int(ready[1])

    def go(self) -> bytes:
        """Let it do its work; return what it printed. Fails on a non-zero exit."""
        output, _ = self.process.communicate(b"go\n", timeout=30)
        assert self.process.returncode == 0, f"target exited with {self.process.returncode}"
        return output

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def start_target(target_binary: Path) -> Iterator[Callable[..., Target]]:
    """Start targets with ``start_target(*args)``; all are killed at the end."""
    started: list[Target] = []

    def start(*args: str) -> Target:
        target = Target(target_binary, *args)
        started.append(target)
        return target

    yield start
    for target in started:
        target.stop()


@pytest.fixture
def child_cgroup() -> Iterator[Path]:
    """A new cgroup v2 directory, removed (after its processes exit) at the end."""
    if not (CGROUP2_ROOT / "cgroup.procs").exists():
        pytest.skip(f"no cgroup v2 hierarchy at {CGROUP2_ROOT}")
    path = CGROUP2_ROOT / f"pykex-test-{secrets.token_hex(4)}"
    path.mkdir()
    try:
        yield path
    finally:
        deadline = time.monotonic() + 10
        while True:
            try:
                path.rmdir()
                break
            except OSError:  # EBUSY until its last process is reaped
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture
def pin_dir() -> Iterator[Path]:
    """A private directory in bpffs; whatever is pinned there is removed at the end."""
    path = Path(ensure_bpffs()) / f"pykex-test-{secrets.token_hex(4)}"
    path.mkdir()
    try:
        yield path
    finally:
        for pinned in path.iterdir():
            pinned.unlink()
        path.rmdir()


# -- programs and maps -----------------------------------------------------------


def load(prog_type: ProgType, text: str, **options: object) -> Program:
    """Assemble ``text`` (verifier-log syntax) and load it."""
    return Program.load(prog_type, encode(assemble(text)).code, **options)  # type: ignore[arg-type]


def array_map(entries: int = 4) -> ArrayMap:
    """An array of u64 counters."""
    return ArrayMap.create(u64, entries, name="counters")


def percpu_protocol_map() -> PerCpuHashMap:
    """A per-CPU hash from u32 IP protocol to u64 packet count."""
    return PerCpuHashMap.create(u32, u64, 256, name="protocols")


def counter(counts: Map, index: int = 0) -> int:
    return counts[index]


def per_protocol(counts: PerCpuHashMap) -> dict[int, int]:
    """Packet counts of a :func:`percpu_protocol_map`, summed over CPUs."""
    return {protocol: sum(per_cpu) for protocol, per_cpu in counts.items()}


def count_into(counts: Map, index: int = 0) -> str:
    """Instructions adding one to counter ``index`` of ``counts`` (clobbers r0-r5)."""
    return f"""
        *(u32 *)(r10 -4) = {index}
        r1 = map[fd:{int(counts.fd)}] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto counted_{index}
        r1 = 1
        lock *(u64 *)(r0 +0) += r1
    counted_{index}:
    """


def counting_program(
    prog_type: ProgType, counts: Map, index: int = 0, verdict: int = 0, **options: object
) -> Program:
    """A program that counts each run into ``counts[index]`` and returns ``verdict``."""
    return load(prog_type, count_into(counts, index) + f"r0 = {verdict}\nexit", **options)


def pid_counting_program(
    prog_type: ProgType, counts: Map, pid: int, syscall_number: int | None = None
) -> Program:
    """Counts runs in process ``pid`` (for raw sys_enter: of one syscall only)."""
    syscall_filter = (
        f"r1 = *(u64 *)(r6 +8)\nif r1 != {syscall_number} goto out" if syscall_number else ""
    )
    return load(
        prog_type,
        f"""
        r6 = r1
        call bpf_get_current_pid_tgid
        r0 >>= 32
        if r0 != {pid} goto out
        {syscall_filter}
        {count_into(counts)}
    out:
        r0 = 0
        exit
        """,
    )


def protocol_counter(
    prog_type: ProgType,
    counts: Map,
    *,
    data: int,
    data_end: int,
    verdict: int,
    expected_attach_type: AttachType | int = 0,
) -> Program:
    """Counts IPv4 packets per IP protocol into a :func:`percpu_protocol_map`.

    ``data``/``data_end`` are the context offsets of the packet pointers
    (xdp_md: 0/4, __sk_buff: 76/80). The protocol is byte 23 of an Ethernet
    frame, read only after checking the frame is that long and IPv4.
    """
    return load(
        prog_type,
        f"""
        r2 = *(u32 *)(r1 +{data})
        r3 = *(u32 *)(r1 +{data_end})
        r4 = r2
        r4 += 24
        if r4 > r3 goto out
        r5 = *(u16 *)(r2 +12)
        if r5 != 0x8 goto out              ; ETH_P_IP, big-endian 0x0800 read as little-endian
        r5 = *(u8 *)(r2 +23)
        *(u32 *)(r10 -4) = r5
        r1 = map[fd:{int(counts.fd)}] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto first
        r1 = 1
        lock *(u64 *)(r0 +0) += r1
        goto out
    first:
        *(u64 *)(r10 -16) = 1              ; this CPU's slot of a new entry
        r1 = map[fd:{int(counts.fd)}] ll
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 0
        call bpf_map_update_elem
    out:
        r0 = {verdict}
        exit
        """,
        expected_attach_type=expected_attach_type,
    )


def wait_until(condition: object, timeout: float = 10) -> bool:
    """Poll ``condition()`` until true; the kernel frees some objects asynchronously."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def xdp_mode(ifname: str) -> str | None:
    """How ``ip`` reports the XDP program on ``ifname``: "xdp", "xdpgeneric" or None."""
    output = subprocess.run(
        ["ip", "-d", "link", "show", "dev", ifname], capture_output=True, text=True, check=True
    ).stdout
    for mode in ("xdpgeneric", "xdpdrv", "xdpoffload", "xdp"):
        if f" {mode}" in output or f"{mode}/" in output:
            return mode
    return None
