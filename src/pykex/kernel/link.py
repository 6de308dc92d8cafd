"""Attaching programs to kernel hooks, and the links that keep them there.

Every ``attach_*`` function takes a loaded :class:`~pykex.kernel.Program` and
returns a :class:`Link`, which owns whatever keeps the program attached: a
bpf_link descriptor, the perf event a tracing link hangs on, or (for socket
filters) the socket option. A Link detaches when its ``with`` block ends, when
:meth:`Link.detach` is called, or at interpreter exit for links still alive
then. A pinned link is the exception: its pin owns it, so it stays attached
until the pin is removed (:meth:`Link.unpin`).

Detaching a bpf_link uses BPF_LINK_DETACH where the link type supports it, so
the program comes off its hook even when a forked child still holds a copy of
the descriptor. The reverse does not happen: in a forked child, detaching (and
so the child's exit) only closes the child's copies and leaves the parent's
program attached.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import os
import socket
import struct
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pykex.btf.tracefs import tracefs_root
from pykex.elf.symbols import symbol_file_offset

from . import perf, syscall, uapi
from .cpus import online_cpus
from .errors import ENOTSUPP, BPFError, NotSupportedError
from .fd import FD
from .fs import pin_path
from .program import Program
from .uapi import AttachType, LinkType, XdpFlag

# Socket options of SOL_SOCKET (asm-generic/socket.h).
SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27

# enum bpf_perf_event_type: what a perf_event link is attached to.
_PERF_EVENT_KINDS = {
    1: "uprobe",
    2: "uretprobe",
    3: "kprobe",
    4: "kretprobe",
    5: "tracepoint",
    6: "event",
}

_SOFTWARE_EVENTS = {
    "cpu-clock": perf.SoftwareEvent.CPU_CLOCK,
    "task-clock": perf.SoftwareEvent.TASK_CLOCK,
    "page-faults": perf.SoftwareEvent.PAGE_FAULTS,
    "context-switches": perf.SoftwareEvent.CONTEXT_SWITCHES,
    "cpu-migrations": perf.SoftwareEvent.CPU_MIGRATIONS,
}

_XDP_MODES = {
    "native": XdpFlag.DRV_MODE,
    "generic": XdpFlag.SKB_MODE,
    "auto": XdpFlag.NONE,
}

_TCX_DIRECTIONS = {"ingress": AttachType.TCX_INGRESS, "egress": AttachType.TCX_EGRESS}

# errnos by which a kernel says "this kind of link cannot do that".
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, ENOTSUPP)


class InterfaceNotFoundError(LookupError):
    """No network interface of that name or index in this network namespace."""

    def __init__(self, interface: str | int) -> None:
        self.interface = interface
        super().__init__(f"no network interface {interface!r}")

    def __str__(self) -> str:  # LookupError would repr() the message otherwise
        return str(self.args[0])


class TracepointNotFoundError(LookupError):
    """The kernel has no tracepoint of that name."""

    def __init__(self, name: str, where: str) -> None:
        self.name = name
        super().__init__(f"no tracepoint {name!r} ({where})")

    def __str__(self) -> str:
        return str(self.args[0])


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


@dataclass(frozen=True)
class LinkInfo:
    """What the kernel reports about a link; per-type fields are None elsewhere."""

    id: int
    type: LinkType | int
    prog_id: int
    ifindex: int | None = None  # XDP, tcx, netkit
    attach_type: AttachType | int | None = None  # tcx, cgroup, netns
    tracepoint: str | None = None  # raw tracepoint, or tracepoint under a perf event
    cgroup_id: int | None = None
    perf_event: str | None = None  # "tracepoint", "uprobe", "event", ...


_live_links: weakref.WeakSet[Link] = weakref.WeakSet()


def _detach_live_links() -> None:
    """Detach every link still attached; runs at interpreter exit.

    One link failing to detach must not keep the others attached.
    """
    for link in list(_live_links):
        with contextlib.suppress(OSError):
            link.detach()


atexit.register(_detach_live_links)


class Link:
    """One attachment of a program, owned by this object.

    ``link_fds`` are bpf_link descriptors (one per CPU for sampling events);
    ``perf_fds`` the perf events they hang on. ``legacy_perf_fds`` are perf
    events the program was attached to with PERF_EVENT_IOC_SET_BPF on kernels
    without perf links. ``release`` undoes an attachment that has no
    descriptor of its own (socket filters).
    """

    def __init__(
        self,
        description: str,
        link_fds: Sequence[FD] = (),
        *,
        perf_fds: Sequence[FD] = (),
        legacy_perf_fds: Sequence[FD] = (),
        release: Callable[[], None] | None = None,
        pinned_path: str | None = None,
    ) -> None:
        self.description = description
        self._link_fds = list(link_fds)
        self._perf_fds = list(perf_fds)
        self._legacy_perf_fds = list(legacy_perf_fds)
        self._release = release
        self.pinned_path = pinned_path
        self._owner_pid = os.getpid()
        self._attached = True
        _live_links.add(self)

    # -- identity -------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self._attached

    @property
    def fd(self) -> FD:
        """The bpf_link descriptor (links made of one bpf_link only)."""
        if len(self._link_fds) != 1:
            kind = "no bpf_link" if not self._link_fds else f"{len(self._link_fds)} bpf_links"
            raise ValueError(f"{self.description} has {kind}, not one")
        return self._link_fds[0]

    @property
    def ids(self) -> list[int]:
        """Kernel ids of the bpf_links (one per CPU for sampling events)."""
        return [self._raw_info(fd).id for fd in self._link_fds]

    @property
    def id(self) -> int:
        return self._raw_info(self.fd).id

    # -- lifetime -------------------------------------------------------------

    def detach(self) -> None:
        """Take the program off its hook and close the descriptors.

        A pinned link only closes this handle: the pin keeps it attached. So
        does a forked child, whose copy of the link belongs to its parent.
        Calling it again does nothing.
        """
        if not self._attached:
            return
        self._attached = False
        _live_links.discard(self)
        try:
            if os.getpid() == self._owner_pid:
                self._take_off_hook()
        finally:
            for fd in self._link_fds + self._perf_fds + self._legacy_perf_fds:
                fd.close()

    def _take_off_hook(self) -> None:
        if self._release is not None:
            self._release()
        for fd in self._legacy_perf_fds:
            if not fd.closed:
                perf.disable(int(fd))
        if self.pinned_path is None:
            for fd in self._link_fds:
                _force_detach(fd)

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # -- pinning --------------------------------------------------------------

    def pin(self, path: str) -> str:
        """Pin under bpffs (relative paths go under /sys/fs/bpf); returns the path.

        The link then outlives this process until :meth:`unpin`.
        """
        full = pin_path(path)
        syscall.obj_pin(int(self._pinnable_fd()), full)
        self.pinned_path = full
        return full

    def unpin(self) -> None:
        """Remove the pin; the link ends once no descriptor refers to it."""
        if self.pinned_path is None:
            raise ValueError(f"{self.description} is not pinned")
        os.unlink(self.pinned_path)
        self.pinned_path = None

    def _pinnable_fd(self) -> FD:
        if len(self._link_fds) != 1:
            raise ValueError(
                f"{self.description} is not one bpf_link and cannot be pinned "
                "(per-CPU events, socket filters and pre-5.15 perf attachments are not)"
            )
        return self._link_fds[0]

    @classmethod
    def from_pin(cls, path: str) -> Link:
        """Open the link pinned at ``path``; it stays pinned."""
        full = pin_path(path)
        fd = syscall.obj_get(full)
        try:
            # The kernel names a link's inode "bpf_link" or "bpf-link" depending on the path.
            pinned = os.readlink(f"/proc/self/fd/{int(fd)}").removeprefix("anon_inode:")
            if pinned.replace("_", "-") != "bpf-link":
                raise ValueError(f"{full} holds a {pinned.replace('bpf-', 'BPF ')}, not a link")
            kind = _link_type(syscall.obj_info(int(fd), uapi.LinkInfo()).type)
        except BaseException:
            fd.close()
            raise
        name = kind.name.lower() if isinstance(kind, LinkType) else str(kind)
        return cls(f"{name} link pinned at {full}", [fd], pinned_path=full)

    # -- program and info -----------------------------------------------------

    def update(self, program: Program, expected: Program | None = None) -> None:
        """Swap in ``program`` atomically (BPF_LINK_UPDATE).

        With ``expected``, the swap happens only if that program is the one attached.
        """
        try:
            syscall.link_update(
                int(self.fd), int(program.fd), int(expected.fd) if expected else 0
            )
        except BPFError as failure:
            if failure.errno in (errno.EOPNOTSUPP, ENOTSUPP):
                raise NotSupportedError(
                    "BPF_LINK_UPDATE",
                    failure.errno,
                    f"replacing the program of a {self.description}",
                ) from None
            raise

    def info(self) -> LinkInfo:
        """The kernel's view of the link (of the first CPU's, for per-CPU events)."""
        if not self._link_fds:
            raise ValueError(f"{self.description} has no bpf_link to describe")
        return _describe(self._link_fds[0])

    @staticmethod
    def _raw_info(fd: FD) -> uapi.LinkInfo:
        return syscall.obj_info(int(fd), uapi.LinkInfo())

    def __repr__(self) -> str:
        state = "attached" if self._attached else "detached"
        pinned = f" pinned at {self.pinned_path}" if self.pinned_path else ""
        return f"<Link {self.description} {state}{pinned}>"


def _force_detach(fd: FD) -> None:
    # Raw tracepoint and perf links cannot be detached this way; closing does it.
    if fd.closed:
        return
    try:
        syscall.link_detach(int(fd))
    except BPFError as failure:
        if failure.errno not in _UNSUPPORTED:
            raise


def _link_type(value: int) -> LinkType | int:
    return LinkType(value) if value in LinkType._value2member_map_ else value


def _attach_type(value: int) -> AttachType | int:
    return AttachType(value) if value in AttachType._value2member_map_ else value


def _link_name(fd: FD, pointer_at: int, length: int) -> str:
    """Ask again for the link's info, with a buffer for the name whose length it reported.

    ``pointer_at`` is where the name's (pointer, length) pair sits in the per-type part.
    """
    buffer = ctypes.create_string_buffer(length)
    info = uapi.LinkInfo()
    detail = bytearray(ctypes.sizeof(info.detail))
    struct.pack_into("=QI", detail, pointer_at, ctypes.addressof(buffer), length)
    ctypes.memmove(ctypes.addressof(info.detail), bytes(detail), len(detail))
    syscall.obj_info(int(fd), info)
    return buffer.value.decode(errors="replace")


def _describe(fd: FD) -> LinkInfo:
    raw = syscall.obj_info(int(fd), uapi.LinkInfo())
    detail = bytes(raw.detail)
    common = {"id": raw.id, "type": _link_type(raw.type), "prog_id": raw.prog_id}
    if raw.type in (LinkType.XDP, LinkType.TCX, LinkType.NETKIT):
        ifindex, attach = struct.unpack_from("=II", detail)
        attach_type = _attach_type(attach) if raw.type != LinkType.XDP else None
        return LinkInfo(**common, ifindex=ifindex, attach_type=attach_type)
    if raw.type == LinkType.CGROUP:
        cgroup_id, attach = struct.unpack_from("=QI", detail)
        return LinkInfo(**common, cgroup_id=cgroup_id, attach_type=_attach_type(attach))
    if raw.type == LinkType.NETNS:
        return LinkInfo(**common, attach_type=_attach_type(struct.unpack_from("=I", detail, 4)[0]))
    if raw.type == LinkType.RAW_TRACEPOINT:
        (name_len,) = struct.unpack_from("=I", detail, 8)
        return LinkInfo(**common, tracepoint=_link_name(fd, 0, name_len))
    if raw.type == LinkType.PERF_EVENT:
        (kind,) = struct.unpack_from("=I", detail)
        perf_event = _PERF_EVENT_KINDS.get(kind, str(kind))
        if perf_event != "tracepoint":
            return LinkInfo(**common, perf_event=perf_event)
        (name_len,) = struct.unpack_from("=I", detail, 16)
        name = _link_name(fd, 8, name_len)
        return LinkInfo(**common, perf_event=perf_event, tracepoint=name)
    return LinkInfo(**common)


# -- network interfaces --------------------------------------------------------


def _interface(interface: str | int) -> tuple[int, str]:
    """(ifindex, name) of an interface of this network namespace."""
    try:
        if isinstance(interface, int):
            return interface, socket.if_indextoname(interface)
        return socket.if_nametoindex(interface), interface
    except OSError:
        raise InterfaceNotFoundError(interface) from None


def attach_xdp(
    program: Program,
    interface: str | int,
    mode: Literal["native", "generic", "auto"] = "native",
) -> Link:
    """Attach an XDP program to ``interface`` (name or index).

    ``native`` runs in the driver, ``generic`` after the stack builds an skb
    (any device), ``auto`` lets the kernel choose.
    """
    if mode not in _XDP_MODES:
        raise ValueError(f"XDP mode must be one of {', '.join(_XDP_MODES)}, not {mode!r}")
    ifindex, name = _interface(interface)
    try:
        fd = syscall.link_create(
            int(program.fd),
            ifindex,
            AttachType.XDP,
            flags=_XDP_MODES[mode],
            feature=f"XDP links in {mode} mode on {name}",
        )
    except BPFError as failure:
        if failure.errno == errno.EBUSY:
            raise BPFError(
                "BPF_LINK_CREATE", errno.EBUSY, f"{name} already has an XDP program attached"
            ) from None
        raise
    return Link(f"xdp ({mode}) link on {name}", [fd])


def attach_tcx(
    program: Program,
    interface: str | int,
    direction: Literal["ingress", "egress"] = "ingress",
) -> Link:
    """Attach a SCHED_CLS program to ``interface``'s tcx ``direction`` hook.

    Load the program with ``expected_attach_type`` TCX_INGRESS or TCX_EGRESS.
    """
    if direction not in _TCX_DIRECTIONS:
        raise ValueError(f"tcx direction must be 'ingress' or 'egress', not {direction!r}")
    ifindex, name = _interface(interface)
    fd = syscall.link_create(
        int(program.fd), ifindex, _TCX_DIRECTIONS[direction], feature="tcx links"
    )
    return Link(f"tcx {direction} link on {name}", [fd])


def attach_cgroup(program: Program, cgroup_path: str, attach_type: AttachType) -> Link:
    """Attach a cgroup program to the cgroup v2 directory ``cgroup_path``."""
    directory = FD(os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY), cgroup_path)
    with directory:
        fd = syscall.link_create(
            int(program.fd),
            int(directory),
            attach_type,
            feature=f"cgroup links of type {AttachType(attach_type).name.lower()}",
        )
    return Link(f"cgroup {AttachType(attach_type).name.lower()} link on {cgroup_path}", [fd])


def attach_socket_filter(program: Program, sock: _HasFileno) -> Link:
    """Filter what ``sock`` receives (SO_ATTACH_BPF); the program returns the bytes to keep."""
    fileno = sock.fileno()
    try:
        socket.socket(fileno=os.dup(fileno)).close()  # a clear error when it is not a socket
    except OSError as failure:
        raise ValueError(f"{sock!r} is not an open socket: {failure.strerror}") from None
    try:
        _setsockopt_int(fileno, SO_ATTACH_BPF, int(program.fd))
    except OSError as failure:
        raise BPFError("setsockopt(SO_ATTACH_BPF)", failure.errno or errno.EINVAL) from None

    def release() -> None:
        if sock.fileno() >= 0:  # a closed socket took its filter with it
            _setsockopt_int(sock.fileno(), SO_DETACH_BPF, 0)

    return Link(f"socket filter on fd {fileno}", release=release)


def _setsockopt_int(fileno: int, option: int, value: int) -> None:
    # socket.socket(fileno=...) would take ownership; use a duplicate instead.
    with socket.socket(fileno=os.dup(fileno)) as view:
        view.setsockopt(socket.SOL_SOCKET, option, value)


# -- tracing ---------------------------------------------------------------------


def attach_raw_tracepoint(program: Program, name: str) -> Link:
    """Attach a RAW_TRACEPOINT program to tracepoint ``name`` (``sys_enter``, ...)."""
    try:
        fd = syscall.raw_tracepoint_open(name, int(program.fd))
    except BPFError as failure:
        if failure.errno == errno.ENOENT:
            raise TracepointNotFoundError(name, "no raw tracepoint of that name") from None
        raise
    return Link(f"raw tracepoint link on {name}", [fd])


def tracepoint_id(name: str) -> int:
    """The perf event id of tracepoint ``group/name``, from tracefs."""
    group, _, event = name.partition("/")
    if not group or not event or "/" in event:
        raise ValueError(f"tracepoint names look like 'group/name', not {name!r}")
    root = tracefs_root()
    try:
        with open(os.path.join(root, "events", group, event, "id")) as f:
            return int(f.read())
    except FileNotFoundError:
        raise TracepointNotFoundError(name, f"not in {root}/events") from None


def attach_tracepoint(program: Program, name: str) -> Link:
    """Attach a TRACEPOINT program to ``group/name`` (``syscalls/sys_enter_openat``)."""
    attr = perf.PerfEventAttr(
        type=perf.PerfType.TRACEPOINT, config=tracepoint_id(name), sample_period=1
    )
    event = perf.perf_event_open(attr, pid=-1, cpu=0, what=f"tracepoint {name}")
    return _attach_to_perf_events(program, [event], f"tracepoint link on {name}")


def attach_perf_event(
    program: Program,
    *,
    frequency: int | None = None,
    period: int | None = None,
    event: str = "cpu-clock",
) -> Link:
    """Run a PERF_EVENT program on every online CPU at each sample of software ``event``.

    Give ``frequency`` (samples per second) or ``period`` (events between samples).
    """
    if (frequency is None) == (period is None):
        raise ValueError("give either frequency= (samples per second) or period=")
    if event not in _SOFTWARE_EVENTS:
        raise ValueError(f"unknown event {event!r}; pykex knows {', '.join(_SOFTWARE_EVENTS)}")
    attr = perf.PerfEventAttr(
        type=perf.PerfType.SOFTWARE,
        config=_SOFTWARE_EVENTS[event],
        sample_period=frequency if frequency is not None else period,
        flags=perf.ATTR_FREQ if frequency is not None else 0,
    )
    events: list[FD] = []
    try:
        for cpu in online_cpus():
            events.append(perf.perf_event_open(attr, pid=-1, cpu=cpu, what=f"{event} on CPU {cpu}"))
    except BaseException:
        for opened in events:
            opened.close()
        raise
    return _attach_to_perf_events(program, events, f"{event} sampling link")


def attach_uprobe(
    program: Program,
    binary: str,
    symbol: str | None = None,
    *,
    retprobe: bool = False,
    offset: int = 0,
    pid: int = -1,
) -> Link:
    """Attach a KPROBE-type program to ``symbol`` (plus ``offset``) of ``binary``.

    Without ``symbol``, ``offset`` is a file offset. ``retprobe`` fires on
    return instead of entry. ``pid`` -1 probes every process mapping the file.
    """
    file_offset = offset + (symbol_file_offset(binary, symbol) if symbol else 0)
    pmu = perf.pmu_type("uprobe", "uprobes (CONFIG_UPROBE_EVENTS)")
    config = 1 << perf.pmu_format_bit("uprobe", "retprobe") if retprobe else 0
    path = ctypes.create_string_buffer(os.fsencode(binary))
    attr = perf.PerfEventAttr(
        type=pmu,
        config=config,
        config1=ctypes.addressof(path),
        config2=file_offset,
        sample_period=1,
    )
    kind = "uretprobe" if retprobe else "uprobe"
    where = f"{binary}:{symbol}" if symbol else f"{binary}+{file_offset:#x}"
    event = perf.perf_event_open(
        attr, pid=pid, cpu=0 if pid == -1 else -1, what=f"{kind} {where}"
    )
    return _attach_to_perf_events(program, [event], f"{kind} link on {where}")


def attach_kprobe(
    program: Program, function: str, *, retprobe: bool = False, offset: int = 0
) -> Link:
    """Attach a KPROBE program to kernel ``function`` (entry, or return with ``retprobe``)."""
    pmu = perf.pmu_type("kprobe", "kprobes (CONFIG_KPROBES)")
    config = 1 << perf.pmu_format_bit("kprobe", "retprobe") if retprobe else 0
    name = ctypes.create_string_buffer(function.encode())
    attr = perf.PerfEventAttr(
        type=pmu, config=config, config1=ctypes.addressof(name), config2=offset, sample_period=1
    )
    kind = "kretprobe" if retprobe else "kprobe"
    event = perf.perf_event_open(attr, pid=-1, cpu=0, what=f"{kind} {function}")
    return _attach_to_perf_events(program, [event], f"{kind} link on {function}")


def _attach_to_perf_events(program: Program, events: list[FD], description: str) -> Link:
    """Attach ``program`` to each perf event; the Link owns events and links."""
    links: list[FD] = []
    legacy = False
    try:
        for event in events:
            if not legacy:
                try:
                    links.append(
                        syscall.link_create(int(program.fd), int(event), AttachType.PERF_EVENT)
                    )
                except BPFError as failure:
                    if failure.errno != errno.EINVAL or _kernel_has_perf_links(program):
                        raise
                    legacy = True
            if legacy:
                perf.set_bpf(int(event), int(program.fd))
            perf.enable(int(event))
    except BaseException:
        for fd in links + events:
            fd.close()
        raise
    if legacy:
        return Link(f"{description} (ioctl)", legacy_perf_fds=events)
    return Link(description, links, perf_fds=events)


def _kernel_has_perf_links(program: Program) -> bool:
    """Whether LINK_CREATE knows BPF_PERF_EVENT (Linux 5.15+).

    Such a kernel looks up the target descriptor first, so -1 fails with
    EBADF; an older one rejects the attach type with EINVAL.
    """
    try:
        syscall.link_create(int(program.fd), -1 & 0xFFFFFFFF, AttachType.PERF_EVENT)
    except BPFError as failure:
        return failure.errno == errno.EBADF
    return True


__all__ = [
    "InterfaceNotFoundError",
    "Link",
    "LinkInfo",
    "TracepointNotFoundError",
    "attach_cgroup",
    "attach_kprobe",
    "attach_perf_event",
    "attach_raw_tracepoint",
    "attach_socket_filter",
    "attach_tcx",
    "attach_tracepoint",
    "attach_uprobe",
    "attach_xdp",
    "tracepoint_id",
]
