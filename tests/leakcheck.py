"""Suite-wide leak check: what the tests create, they must remove.

At session start :func:`take_snapshot` records the network namespaces, veth
interfaces, bpffs pins and BPF links that exist; at session end
:func:`find_leaks` reports every one of them that appeared since and is still
there, and any XDP program on ``eth0`` (the machine's own interface, which no
test may touch). ``tests/conftest.py`` turns a non-empty report into a failed
run.

Other processes on the machine may create such objects at the same time, so a
candidate counts only if it outlives a short grace period (namespace and veth
teardown is asynchronous in the kernel too), and a link counts only if this
process, one of its children, or nobody (a pin) holds it.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from dataclasses import dataclass

from pykex.kernel import BPFError, syscall
from pykex.kernel.fs import BPFFS_ROOT, is_bpffs
from pykex.kernel.uapi import Cmd, LinkInfo, LinkType

# Kernel-provided entries of a bpffs mount (the preload iterators), not pins.
IGNORED_PINS = frozenset({"progs.debug", "maps.debug"})
MACHINE_INTERFACE = "eth0"
GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class Snapshot:
    netns: frozenset[str]
    veths: frozenset[str]
    pins: frozenset[str]
    links: frozenset[int]


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else ""


def network_namespaces() -> frozenset[str]:
    """Named namespaces (``ip netns list`` prints ``name (id: N)`` per line)."""
    return frozenset(line.split()[0] for line in _run("ip", "netns", "list").splitlines() if line)


def veth_interfaces() -> frozenset[str]:
    """veth interfaces of this namespace (``ip -o`` names them ``name@peer``)."""
    names = set()
    for line in _run("ip", "-o", "link", "show", "type", "veth").splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3:
            names.add(fields[1].strip().split("@")[0])
    return frozenset(names)


def bpffs_pins(root: str = BPFFS_ROOT) -> frozenset[str]:
    """Every file and directory under bpffs, relative to ``root``."""
    if not is_bpffs(root):
        return frozenset()
    found = set()
    for directory, subdirs, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        for name in subdirs + files:
            path = name if relative == "." else os.path.join(relative, name)
            if path not in IGNORED_PINS:
                found.add(path)
    return frozenset(found)


def bpf_links() -> frozenset[int]:
    """Ids of every BPF link in the system (empty without the privilege to list them)."""
    ids = set()
    current = 0
    try:
        while (current := syscall.next_id(Cmd.LINK_GET_NEXT_ID, current)) is not None:
            ids.add(current)
    except BPFError as failure:
        if failure.errno not in (errno.EPERM, errno.EACCES):
            raise
    return frozenset(ids)


def take_snapshot() -> Snapshot:
    return Snapshot(network_namespaces(), veth_interfaces(), bpffs_pins(), bpf_links())


def _link_holders() -> dict[int, set[int]]:
    """link id -> pids holding a descriptor of it (from /proc/*/fdinfo)."""
    holders: dict[int, set[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fdinfo = f"/proc/{entry}/fdinfo"
        try:
            descriptors = os.listdir(fdinfo)
        except OSError:
            continue  # the process ended, or is not ours to read
        for fd in descriptors:
            try:
                with open(f"{fdinfo}/{fd}") as info:
                    for line in info:
                        if line.startswith("link_id:"):
                            holders.setdefault(int(line.split()[1]), set()).add(int(entry))
            except OSError:
                continue
    return holders


def _descendants_and_self() -> set[int]:
    """This process and every process started under it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The command name (field 2) may contain spaces: split after its ")".
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    family, pending = set(), [os.getpid()]
    while pending:
        pid = pending.pop()
        family.add(pid)
        pending.extend(children.get(pid, []))
    return family


def _ours(link_ids: frozenset[int]) -> frozenset[int]:
    if not link_ids:
        return link_ids
    holders = _link_holders()
    family = _descendants_and_self()
    return frozenset(i for i in link_ids if not holders.get(i) or holders[i] & family)


def _describe_link(link_id: int) -> str | None:
    """``link N (kind, program id M)``; None when the link went away meanwhile."""
    try:
        with syscall.fd_by_id(Cmd.LINK_GET_FD_BY_ID, link_id) as fd:
            info = syscall.obj_info(int(fd), LinkInfo())
    except BPFError:
        return None
    try:
        kind = LinkType(info.type).name.lower()
    except ValueError:
        kind = f"type {info.type}"
    return f"link {link_id} ({kind}, program id {info.prog_id})"


def xdp_on_machine_interface() -> str | None:
    """A description of the XDP program on ``eth0``, or None when there is none."""
    output = _run("ip", "-j", "-d", "link", "show", "dev", MACHINE_INTERFACE)
    if not output.strip():
        return None  # no such interface here
    xdp = json.loads(output)[0].get("xdp")
    if not xdp:
        return None
    return f"XDP program on {MACHINE_INTERFACE}: {json.dumps(xdp)}"


def _candidates(before: Snapshot) -> list[str]:
    now = take_snapshot()
    found = [f"network namespace {name}" for name in sorted(now.netns - before.netns)]
    found += [f"veth interface {name}" for name in sorted(now.veths - before.veths)]
    found += [f"pin {BPFFS_ROOT}/{path}" for path in sorted(now.pins - before.pins)]
    links = (_describe_link(i) for i in sorted(_ours(now.links - before.links)))
    return found + [link for link in links if link is not None]


def find_leaks(before: Snapshot, grace: float = GRACE_SECONDS) -> list[str]:
    """What appeared since ``before`` and is still there; an XDP program on eth0 always."""
    deadline = time.monotonic() + grace
    leaks = _candidates(before)
    while leaks and time.monotonic() < deadline:
        time.sleep(0.25)
        leaks = _candidates(before)
    xdp = xdp_on_machine_interface()
    return leaks + ([xdp] if xdp else [])
