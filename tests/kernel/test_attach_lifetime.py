"""How long links live: pins across processes, detaching at exit, forced detach."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pykex.kernel import BPFError, ProgType, syscall
from pykex.kernel import link as link_module
from pykex.kernel.link import Link, attach_tracepoint, attach_xdp
from pykex.kernel.uapi import Cmd
from pykex.testing import VethNamespace

from .conftest import (
    array_map,
    counter,
    counting_program,
    pid_counting_program,
    wait_until,
    xdp_mode,
)

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

REPO = Path(__file__).resolve().parents[2]

# Attaches a program counting getppid() calls of process PID into the array
# pinned at MAP_PIN, prints the link id, optionally pins the link, and exits
# without detaching.
ATTACHER = textwrap.dedent(
    """
    import sys
    from pykex.kernel import ProgType
    from pykex.kernel.link import attach_tracepoint
    from pykex.kernel.maps import Map
    from tests.kernel.conftest import pid_counting_program

    map_pin, pid, link_pin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    counts = Map.from_pin(map_pin)
    program = pid_counting_program(ProgType.TRACEPOINT, counts, pid)
    link = attach_tracepoint(program, "syscalls/sys_enter_getppid")
    if link_pin:
        link.pin(link_pin)
    print(link.id)
    """
)


def run_attacher(map_pin: Path, link_pin: str = "") -> int:
    """Run :data:`ATTACHER` in a new process; return the id of the link it made."""
    result = subprocess.run(
        [sys.executable, "-c", ATTACHER, str(map_pin), str(os.getpid()), link_pin],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"},
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def link_exists(link_id: int) -> bool:
    try:
        syscall.fd_by_id(Cmd.LINK_GET_FD_BY_ID, link_id).close()
    except BPFError:
        return False
    return True


def getppid_times(count: int) -> None:
    for _ in range(count):
        os.getppid()


def test_pinned_link_outlives_the_process_that_made_it(pin_dir: Path) -> None:
    counts = array_map()
    map_pin = pin_dir / "counts"
    counts.pin(str(map_pin))
    link_pin = pin_dir / "link"

    link_id = run_attacher(map_pin, str(link_pin))

    assert link_exists(link_id)
    reopened = Link.from_pin(str(link_pin))
    assert reopened.id == link_id
    assert reopened.info().tracepoint == "sys_enter_getppid"
    before = counter(counts)
    getppid_times(6)
    assert counter(counts) == before + 6

    reopened.unpin()
    reopened.detach()
    assert not link_pin.exists()
    assert wait_until(lambda: not link_exists(link_id))
    getppid_times(3)
    assert counter(counts) == before + 6


def test_links_left_attached_are_detached_at_exit(pin_dir: Path) -> None:
    counts = array_map()
    map_pin = pin_dir / "counts"
    counts.pin(str(map_pin))

    link_id = run_attacher(map_pin)

    assert wait_until(lambda: not link_exists(link_id))
    getppid_times(4)
    assert counter(counts) == 0


def test_exit_hook_detaches_even_when_a_copy_of_the_descriptor_lives(
    veth: VethNamespace,
) -> None:
    """A forked child inheriting the descriptor must not keep the program attached."""
    counts = array_map()
    with counting_program(ProgType.XDP, counts, verdict=2) as prog:
        link = attach_xdp(prog, veth.host_ifname)
        inherited = link.fd.dup()
        try:
            link_module._detach_live_links()
            assert not link.attached
            assert xdp_mode(veth.host_ifname) is None
        finally:
            inherited.close()
            link.detach()


def test_forked_child_leaves_the_parents_link_attached(veth: VethNamespace) -> None:
    counts = array_map()
    with (
        counting_program(ProgType.XDP, counts, verdict=2) as prog,
        attach_xdp(prog, veth.host_ifname) as link,
    ):
        child = os.fork()
        if child == 0:
            try:
                link_module._detach_live_links()  # what the child's normal exit runs
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        assert link.attached
        assert xdp_mode(veth.host_ifname) == "xdp"
    assert xdp_mode(veth.host_ifname) is None


def test_detach_is_idempotent_and_forgets_the_link() -> None:
    counts = array_map()
    with counting_program(ProgType.TRACEPOINT, counts) as prog:
        link = attach_tracepoint(prog, "syscalls/sys_enter_getppid")
        link_id = link.id
        assert link in link_module._live_links
        link.detach()
        link.detach()
        assert link not in link_module._live_links
        assert wait_until(lambda: not link_exists(link_id))
        with pytest.raises(ValueError, match="closed"):
            link.info()


def test_pinned_link_is_not_detached_by_its_handle(pin_dir: Path) -> None:
    counts = array_map()
    with pid_counting_program(ProgType.TRACEPOINT, counts, os.getpid()) as prog:
        link = attach_tracepoint(prog, "syscalls/sys_enter_getppid")
        path = link.pin(str(pin_dir / "link"))
        link.detach()
        getppid_times(2)
        assert counter(counts) == 2
        with Link.from_pin(path) as again:
            again.unpin()
        getppid_times(2)
        assert counter(counts) == 2
