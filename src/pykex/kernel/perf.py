"""perf_event_open(2), its ioctls, and what sysfs says about PMUs and CPUs.

Tracepoints, kprobes, uprobes and sampling events all reach BPF through a perf
event: open one, then attach a program to its descriptor. This module opens
them; :mod:`.link` does the attaching. Layouts follow
``include/uapi/linux/perf_event.h``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import re
from enum import IntEnum

from .errors import BPFError, NotSupportedError, PermissionDeniedError
from .fd import FD

_SYS_PERF_EVENT_OPEN = {
    "x86_64": 298,
    "aarch64": 241,
    "riscv64": 241,
    "ppc64le": 319,
    "s390x": 331,
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

PMU_ROOT = "/sys/bus/event_source/devices"


class PerfType(IntEnum):
    """Built-in PMU types (enum perf_type_id); probes have dynamic types from sysfs."""

    HARDWARE = 0
    SOFTWARE = 1
    TRACEPOINT = 2
    HW_CACHE = 3
    RAW = 4
    BREAKPOINT = 5


class SoftwareEvent(IntEnum):
    """Software event configs (enum perf_sw_ids)."""

    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10
    CGROUP_SWITCHES = 11


# Bits of the flag word that follows read_format in perf_event_attr.
ATTR_DISABLED = 1 << 0
ATTR_INHERIT = 1 << 1
ATTR_FREQ = 1 << 10

PERF_FLAG_FD_CLOEXEC = 1 << 3

# _IO('$', n) and _IOW('$', 8, __u32)
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` up to ``config3`` (PERF_ATTR_SIZE_VER8, 136 bytes).

    The bit fields after ``read_format`` are one word here (``flags``), set
    with the ``ATTR_*`` constants.
    """

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),  # sample_freq when ATTR_FREQ is set
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),  # kprobe_func, uprobe_path
        ("config2", ctypes.c_uint64),  # kprobe_addr, probe_offset
        ("branch_sample_type", ctypes.c_uint64),
        ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64),
        ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16),
        ("reserved_2", ctypes.c_uint16),
        ("aux_sample_size", ctypes.c_uint32),
        ("aux_action", ctypes.c_uint32),
        ("sig_data", ctypes.c_uint64),
        ("config3", ctypes.c_uint64),
    ]

    def __init__(self, **fields: int) -> None:
        super().__init__(size=ctypes.sizeof(PerfEventAttr), **fields)


def perf_event_open(
    attr: PerfEventAttr, pid: int = -1, cpu: int = 0, group_fd: int = -1, what: str = ""
) -> FD:
    """Open a perf event (close-on-exec); raise :class:`BPFError` naming ``what``."""
    number = _SYS_PERF_EVENT_OPEN.get(platform.machine())
    if number is None:
        raise OSError(
            errno.ENOSYS, f"pykex does not know perf_event_open(2) on {platform.machine()}"
        )
    ret = _libc.syscall(
        number, ctypes.byref(attr), pid, cpu, group_fd, ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC)
    )
    if ret < 0:
        err = ctypes.get_errno()
        if err in (errno.EPERM, errno.EACCES):
            raise PermissionDeniedError(
                "perf_event_open", err, f"{what}: needs CAP_PERFMON or CAP_SYS_ADMIN"
            )
        raise BPFError("perf_event_open", err, what)
    return FD(ret, f"perf event {what}".rstrip())


def _ioctl(fd: int, request: int, arg: int, name: str) -> None:
    try:
        fcntl.ioctl(fd, request, arg)
    except OSError as failure:
        raise BPFError(name, failure.errno or errno.EIO) from None


def enable(fd: int) -> None:
    _ioctl(fd, PERF_EVENT_IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")


def disable(fd: int) -> None:
    _ioctl(fd, PERF_EVENT_IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")


def set_bpf(fd: int, prog_fd: int) -> None:
    """Attach a program to a perf event the pre-bpf_link way (PERF_EVENT_IOC_SET_BPF)."""
    _ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd, "PERF_EVENT_IOC_SET_BPF")


def pmu_type(pmu: str, feature: str | None = None) -> int:
    """The dynamic type number of PMU ``pmu`` (``kprobe``, ``uprobe``, ...).

    A missing PMU raises :class:`NotSupportedError` naming ``feature``.
    """
    try:
        with open(os.path.join(PMU_ROOT, pmu, "type")) as f:
            return int(f.read())
    except FileNotFoundError:
        raise NotSupportedError(
            "perf_event_open", errno.ENOENT, feature or f"the {pmu} PMU"
        ) from None


_FORMAT = re.compile(r"^(config\d?):(\d+)(?:-(\d+))?$")


def pmu_format_bit(pmu: str, field: str) -> int:
    """The single config bit that ``format/<field>`` of ``pmu`` names (``retprobe``)."""
    path = os.path.join(PMU_ROOT, pmu, "format", field)
    with open(path) as f:
        text = f.read().strip()
    match = _FORMAT.match(text)
    if not match or match.group(1) != "config" or match.group(3) is not None:
        raise ValueError(f"{path} is {text!r}, not a single bit of config")
    return int(match.group(2))


