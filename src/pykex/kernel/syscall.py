"""The bpf(2) system call: one entry point, then one thin function per command.

Everything in pykex that talks to the kernel's BPF subsystem goes through
:func:`bpf`. The functions below it translate Python values to ``bpf_attr``
members and back, and nothing more; object lifetimes and typed views live in
the modules built on top (``maps``, ``program``, ``link``).

Tests can swap the call itself with :func:`override_backend`, to check error
handling without a kernel.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import BPFError, BTFLoadError, VerifierError, error_from_errno
from .fd import FD
from .uapi import (
    BPF_LOG_MAX_SIZE,
    BPF_OBJ_NAME_LEN,
    BtfLoadAttr,
    Cmd,
    EnableStatsAttr,
    GetIdAttr,
    InfoAttr,
    LinkCreateAttr,
    LinkDetachAttr,
    LinkUpdateAttr,
    MapBatchAttr,
    MapCreateAttr,
    MapElemAttr,
    ObjAttr,
    ProgAttachAttr,
    ProgBindMapAttr,
    ProgLoadAttr,
    ProgQueryAttr,
    ProgType,
    RawTracepointAttr,
    StatsType,
    TestRunAttr,
)

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

Backend = Callable[[int, ctypes.Structure], int]
"""bpf(cmd, attr) returning the result, or ``-errno`` on failure."""


def _kernel_backend(cmd: int, attr: ctypes.Structure) -> int:
    number = _SYS_BPF.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"pykex does not know bpf(2) on {platform.machine()}")
    ret = _libc.syscall(number, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    return ret if ret >= 0 else -ctypes.get_errno()


_backend: Backend = _kernel_backend

# PROG_LOAD returns EAGAIN when the verifier was interrupted by a signal.
_EAGAIN_RETRIES = 5


def bpf(cmd: Cmd, attr: ctypes.Structure, feature: str | None = None) -> int:
    """Call bpf(2); raise the most specific :class:`BPFError` on failure.

    ``feature`` names what the call asks of the kernel, so an EINVAL from a
    kernel without it reads "this kernel does not support <feature>".
    """
    retries = 0
    while True:
        ret = _backend(int(cmd), attr)
        if ret >= 0:
            return ret
        err = -ret
        if err == errno.EINTR or (err == errno.EAGAIN and retries < _EAGAIN_RETRIES):
            retries += 1
            continue
        raise error_from_errno(f"BPF_{cmd.name}", err, feature)


@contextmanager
def override_backend(backend: Backend) -> Iterator[None]:
    """Route every bpf(2) call through ``backend`` inside the block."""
    global _backend
    saved = _backend
    _backend = backend
    try:
        yield
    finally:
        _backend = saved


def _addr(buffer: ctypes.Array | None) -> int:
    return ctypes.addressof(buffer) if buffer is not None else 0


def _name(name: str) -> bytes:
    # The kernel accepts only [A-Za-z0-9_.] in object names.
    cleaned = "".join(c if c.isalnum() or c in "_." else "_" for c in name)
    return cleaned.encode()[: BPF_OBJ_NAME_LEN - 1]


# -- maps --------------------------------------------------------------------


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    flags: int = 0,
    name: str = "",
    inner_map_fd: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    map_extra: int = 0,
    feature: str | None = None,
) -> FD:
    attr = MapCreateAttr(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        inner_map_fd=inner_map_fd,
        map_name=_name(name),
        btf_fd=btf_fd,
        btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
        map_extra=map_extra,
    )
    return FD(bpf(Cmd.MAP_CREATE, attr, feature), f"map {name}")


def map_lookup(fd: int, key: bytes | None, value_size: int, flags: int = 0) -> bytes | None:
    """The value under ``key``, or None when absent. ``key`` None: queue/stack peek."""
    key_buf = ctypes.create_string_buffer(key, len(key)) if key is not None else None
    value = ctypes.create_string_buffer(value_size)
    attr = MapElemAttr(map_fd=fd, key=_addr(key_buf), value=_addr(value), flags=flags)
    try:
        bpf(Cmd.MAP_LOOKUP_ELEM, attr)
    except KeyError:
        return None
    return value.raw


def map_update(fd: int, key: bytes | None, value: bytes, flags: int = 0) -> None:
    """Store ``value`` under ``key`` (``key`` None: queue/stack push)."""
    key_buf = ctypes.create_string_buffer(key, len(key)) if key is not None else None
    value_buf = ctypes.create_string_buffer(value, len(value))
    attr = MapElemAttr(map_fd=fd, key=_addr(key_buf), value=_addr(value_buf), flags=flags)
    bpf(Cmd.MAP_UPDATE_ELEM, attr)


def map_delete(fd: int, key: bytes) -> bool:
    """Delete ``key``; False when it was not there."""
    key_buf = ctypes.create_string_buffer(key, len(key))
    try:
        bpf(Cmd.MAP_DELETE_ELEM, MapElemAttr(map_fd=fd, key=_addr(key_buf)))
    except KeyError:
        return False
    return True


def map_lookup_and_delete(
    fd: int, key: bytes | None, value_size: int, flags: int = 0
) -> bytes | None:
    """Remove and return the value under ``key`` (``key`` None: queue/stack pop)."""
    key_buf = ctypes.create_string_buffer(key, len(key)) if key is not None else None
    value = ctypes.create_string_buffer(value_size)
    attr = MapElemAttr(map_fd=fd, key=_addr(key_buf), value=_addr(value), flags=flags)
    try:
        bpf(Cmd.MAP_LOOKUP_AND_DELETE_ELEM, attr)
    except KeyError:
        return None
    return value.raw


def map_next_key(fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """The key after ``key`` (the first key when None); None at the end."""
    key_buf = ctypes.create_string_buffer(key, len(key)) if key is not None else None
    next_key = ctypes.create_string_buffer(key_size)
    attr = MapElemAttr(map_fd=fd, key=_addr(key_buf), value=_addr(next_key))
    try:
        bpf(Cmd.MAP_GET_NEXT_KEY, attr)
    except KeyError:
        return None
    return next_key.raw


def map_freeze(fd: int) -> None:
    """Make the map read-only for user space from now on."""
    bpf(Cmd.MAP_FREEZE, MapElemAttr(map_fd=fd))


@dataclass
class BatchResult:
    keys: bytes
    values: bytes
    count: int
    next_batch: bytes | None  # None once the map is exhausted


def map_lookup_batch(
    fd: int,
    key_size: int,
    value_size: int,
    count: int,
    in_batch: bytes | None,
    *,
    delete: bool = False,
    batch_size: int | None = None,
) -> BatchResult:
    """Up to ``count`` entries starting at the opaque cursor ``in_batch``.

    ``value_size`` is the size of one value as the kernel copies it (for
    per-CPU maps: the per-CPU size times the number of possible CPUs).
    """
    cursor_size = batch_size or max(key_size, 8)
    keys = ctypes.create_string_buffer(key_size * count)
    values = ctypes.create_string_buffer(value_size * count)
    in_buf = ctypes.create_string_buffer(in_batch, cursor_size) if in_batch else None
    out_buf = ctypes.create_string_buffer(cursor_size)
    attr = MapBatchAttr(
        in_batch=_addr(in_buf),
        out_batch=_addr(out_buf),
        keys=_addr(keys),
        values=_addr(values),
        count=count,
        map_fd=fd,
    )
    cmd = Cmd.MAP_LOOKUP_AND_DELETE_BATCH if delete else Cmd.MAP_LOOKUP_BATCH
    done = False
    try:
        bpf(cmd, attr)
    except KeyError:  # ENOENT: the last batch; attr.count holds what it found
        done = True
    n = attr.count
    return BatchResult(
        keys=keys.raw[: n * key_size],
        values=values.raw[: n * value_size],
        count=n,
        next_batch=None if done else out_buf.raw,
    )


def map_update_batch(fd: int, keys: bytes, values: bytes, count: int, flags: int = 0) -> int:
    """Store ``count`` packed keys and values; returns how many were stored."""
    key_buf = ctypes.create_string_buffer(keys, len(keys))
    value_buf = ctypes.create_string_buffer(values, len(values))
    attr = MapBatchAttr(
        keys=_addr(key_buf), values=_addr(value_buf), count=count, map_fd=fd, elem_flags=flags
    )
    bpf(Cmd.MAP_UPDATE_BATCH, attr)
    return attr.count


def map_delete_batch(fd: int, keys: bytes, count: int) -> int:
    """Delete ``count`` packed keys; returns how many were deleted."""
    key_buf = ctypes.create_string_buffer(keys, len(keys))
    attr = MapBatchAttr(keys=_addr(key_buf), count=count, map_fd=fd)
    bpf(Cmd.MAP_DELETE_BATCH, attr)
    return attr.count


# -- programs ----------------------------------------------------------------

# First retry size for the verifier log; grown from the kernel's own report of
# the size it needed (log_true_size) or doubled on kernels that lack it.
_LOG_START_SIZE = 1 << 20


@dataclass
class LoadResult:
    fd: FD
    log: str  # empty unless a log was asked for


def prog_load(
    prog_type: int,
    insns: bytes,
    *,
    license: str = "GPL",
    name: str = "",
    expected_attach_type: int = 0,
    prog_flags: int = 0,
    prog_btf_fd: int = 0,
    func_info: bytes = b"",
    func_info_rec_size: int = 8,
    line_info: bytes = b"",
    line_info_rec_size: int = 16,
    attach_btf_id: int = 0,
    attach_prog_fd: int = 0,
    fd_array: list[int] | None = None,
    log_level: int = 0,
    feature: str | None = None,
) -> LoadResult:
    """Load a program; raise :class:`VerifierError` with the full log on rejection.

    The first attempt runs without a log (cheaper); a failure is retried with
    one, growing the buffer until the whole log fits.
    """
    if len(insns) % 8:
        raise ValueError(f"instructions are {len(insns)} bytes, not a multiple of 8")
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    license_buf = ctypes.create_string_buffer(license.encode())
    func_buf = ctypes.create_string_buffer(func_info, len(func_info)) if func_info else None
    line_buf = ctypes.create_string_buffer(line_info, len(line_info)) if line_info else None
    fds = (ctypes.c_int32 * len(fd_array))(*fd_array) if fd_array else None

    def attempt(level: int, log_buf: ctypes.Array | None) -> ProgLoadAttr:
        return ProgLoadAttr(
            prog_type=prog_type,
            insn_cnt=len(insns) // 8,
            insns=_addr(insn_buf),
            license=_addr(license_buf),
            log_level=level,
            log_size=len(log_buf) if log_buf is not None else 0,
            log_buf=_addr(log_buf),
            prog_flags=prog_flags,
            prog_name=_name(name),
            expected_attach_type=expected_attach_type,
            prog_btf_fd=prog_btf_fd,
            func_info_rec_size=func_info_rec_size if func_info else 0,
            func_info=_addr(func_buf),
            func_info_cnt=len(func_info) // func_info_rec_size if func_info else 0,
            line_info_rec_size=line_info_rec_size if line_info else 0,
            line_info=_addr(line_buf),
            line_info_cnt=len(line_info) // line_info_rec_size if line_info else 0,
            attach_btf_id=attach_btf_id,
            attach_prog_fd=attach_prog_fd,
            fd_array=_addr(fds),
        )

    command = f"BPF_PROG_LOAD {ProgType(prog_type).name.lower()} {name}".rstrip()
    if log_level == 0:
        try:
            return LoadResult(FD(bpf(Cmd.PROG_LOAD, attempt(0, None), feature), command), "")
        except BPFError as first:
            if first.errno == errno.EPERM and not has_bpf_capability():
                raise
    size = _LOG_START_SIZE
    level = log_level or 1
    while True:
        log_buf = ctypes.create_string_buffer(size)
        attr = attempt(level, log_buf)
        try:
            fd = FD(bpf(Cmd.PROG_LOAD, attr, feature), command)
            return LoadResult(fd, _log_text(log_buf))
        except BPFError as failure:
            log = _log_text(log_buf)
            if failure.errno == errno.ENOSPC and size < BPF_LOG_MAX_SIZE:
                size = min(max(attr.log_true_size, size * 2), BPF_LOG_MAX_SIZE)
                continue
            if log:
                raise VerifierError(
                    command, failure.errno, log, truncated=failure.errno == errno.ENOSPC
                ) from None
            raise


def _log_text(buffer: ctypes.Array) -> str:
    return buffer.value.decode(errors="replace")


def has_bpf_capability() -> bool:
    """Whether this process may load programs (CAP_BPF or CAP_SYS_ADMIN)."""
    # CAP_BPF is bit 39, CAP_SYS_ADMIN bit 21 of the effective set.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                caps = int(line.split()[1], 16)
                return bool(caps & (1 << 39) or caps & (1 << 21))
    return os.geteuid() == 0


def btf_load(data: bytes, log_level: int = 0) -> FD:
    """Load raw BTF; raise :class:`BTFLoadError` with the kernel's log on rejection.

    Without ``log_level`` the first attempt runs without a log (at level 1 the
    kernel logs every type, which overflows any buffer for large BTF) and only
    a failure is retried with one.
    """
    data_buf = ctypes.create_string_buffer(data, len(data))

    def attempt(level: int, log_buf: ctypes.Array | None) -> BtfLoadAttr:
        return BtfLoadAttr(
            btf=_addr(data_buf),
            btf_size=len(data),
            btf_log_buf=_addr(log_buf),
            btf_log_size=len(log_buf) if log_buf is not None else 0,
            btf_log_level=level,
        )

    if log_level == 0:
        try:
            return FD(bpf(Cmd.BTF_LOAD, attempt(0, None)), "btf")
        except BPFError as failure:
            if failure.errno == errno.EPERM:
                raise
    size = 1 << 16
    while True:
        log_buf = ctypes.create_string_buffer(size)
        attr = attempt(log_level or 1, log_buf)
        try:
            return FD(bpf(Cmd.BTF_LOAD, attr), "btf")
        except BPFError as failure:
            if failure.errno == errno.EPERM:
                raise
            if failure.errno == errno.ENOSPC and size < BPF_LOG_MAX_SIZE:
                size = min(max(attr.btf_log_true_size, size * 2), BPF_LOG_MAX_SIZE)
                continue
            raise BTFLoadError("BPF_BTF_LOAD", failure.errno, _log_text(log_buf)) from None


@dataclass
class TestRunResult:
    retval: int
    duration_ns: int  # mean per run, as the kernel measures it
    data_out: bytes
    ctx_out: bytes


def prog_test_run(
    fd: int,
    data: bytes = b"",
    *,
    repeat: int = 1,
    ctx: bytes = b"",
    data_out_size: int | None = None,
    ctx_out_size: int | None = None,
    flags: int = 0,
    cpu: int = 0,
    batch_size: int = 0,
) -> TestRunResult:
    """Run the program on ``data``/``ctx`` ``repeat`` times (BPF_PROG_TEST_RUN)."""
    data_in = ctypes.create_string_buffer(data, len(data)) if data else None
    # XDP may grow the packet by up to a page at the tail.
    out_size = data_out_size if data_out_size is not None else (len(data) + 4096 if data else 0)
    data_out = ctypes.create_string_buffer(out_size) if out_size else None
    ctx_in = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    ctx_size = ctx_out_size if ctx_out_size is not None else len(ctx)
    ctx_out = ctypes.create_string_buffer(ctx_size) if ctx_size else None
    attr = TestRunAttr(
        prog_fd=fd,
        data_size_in=len(data),
        data_size_out=out_size,
        data_in=_addr(data_in),
        data_out=_addr(data_out),
        repeat=repeat,
        ctx_size_in=len(ctx),
        ctx_size_out=ctx_size,
        ctx_in=_addr(ctx_in),
        ctx_out=_addr(ctx_out),
        flags=flags,
        cpu=cpu,
        batch_size=batch_size,
    )
    bpf(Cmd.PROG_TEST_RUN, attr)
    return TestRunResult(
        retval=attr.retval,
        duration_ns=attr.duration,
        data_out=data_out.raw[: attr.data_size_out] if data_out is not None else b"",
        ctx_out=ctx_out.raw[: attr.ctx_size_out] if ctx_out is not None else b"",
    )


def prog_bind_map(prog_fd: int, map_fd: int) -> None:
    """Keep ``map_fd`` alive as long as the program, though no instruction uses it."""
    bpf(Cmd.PROG_BIND_MAP, ProgBindMapAttr(prog_fd=prog_fd, map_fd=map_fd))


# -- objects, ids, info ------------------------------------------------------


def obj_pin(fd: int, path: str) -> None:
    path_buf = ctypes.create_string_buffer(os.fsencode(path))
    bpf(Cmd.OBJ_PIN, ObjAttr(pathname=_addr(path_buf), bpf_fd=fd))


def obj_get(path: str, flags: int = 0) -> FD:
    path_buf = ctypes.create_string_buffer(os.fsencode(path))
    return FD(bpf(Cmd.OBJ_GET, ObjAttr(pathname=_addr(path_buf), file_flags=flags)), path)


def obj_info(fd: int, info: ctypes.Structure) -> ctypes.Structure:
    """Fill ``info`` (ProgInfo, MapInfo, LinkInfo, BtfInfo) for the object behind ``fd``."""
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr)
    return info


def next_id(cmd: Cmd, start: int) -> int | None:
    """The next object id after ``start`` for a *_GET_NEXT_ID command; None at the end."""
    attr = GetIdAttr(start_id=start)
    try:
        bpf(cmd, attr)
    except BPFError as failure:
        if failure.errno == errno.ENOENT:
            return None
        raise
    return attr.next_id


def fd_by_id(cmd: Cmd, object_id: int) -> FD:
    """Open the object with ``object_id`` through a *_GET_FD_BY_ID command."""
    return FD(bpf(cmd, GetIdAttr(start_id=object_id)), f"id {object_id}")


def enable_stats(kind: StatsType = StatsType.RUN_TIME) -> FD:
    """Turn on run-time statistics (run_cnt, run_time_ns) until the FD closes."""
    return FD(bpf(Cmd.ENABLE_STATS, EnableStatsAttr(type=kind)), "stats")


# -- attachment ----------------------------------------------------------------


def link_create(
    prog_fd: int,
    target_fd: int,
    attach_type: int,
    *,
    flags: int = 0,
    extra: list[int] | None = None,
    feature: str | None = None,
) -> FD:
    """BPF_LINK_CREATE. ``extra`` fills the per-type tail as 64-bit words."""
    attr = LinkCreateAttr(
        prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type, flags=flags
    )
    for i, word in enumerate(extra or ()):
        attr.extra[i] = word
    return FD(bpf(Cmd.LINK_CREATE, attr, feature), "link")


def link_update(link_fd: int, new_prog_fd: int, old_prog_fd: int = 0) -> None:
    """Swap the program behind a link, atomically."""
    flags = 1 << 2 if old_prog_fd else 0  # BPF_F_REPLACE: only if old_prog_fd is current
    attr = LinkUpdateAttr(
        link_fd=link_fd, new_prog_fd=new_prog_fd, flags=flags, old_prog_fd=old_prog_fd
    )
    bpf(Cmd.LINK_UPDATE, attr)


def link_detach(link_fd: int) -> None:
    """Detach the link from its hook; the FD stays valid but defunct."""
    bpf(Cmd.LINK_DETACH, LinkDetachAttr(link_fd=link_fd))


def raw_tracepoint_open(name: str, prog_fd: int) -> FD:
    name_buf = ctypes.create_string_buffer(name.encode())
    attr = RawTracepointAttr(name=_addr(name_buf), prog_fd=prog_fd)
    return FD(bpf(Cmd.RAW_TRACEPOINT_OPEN, attr, f"raw tracepoint {name}"), f"raw_tp {name}")


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    attr = ProgAttachAttr(
        target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type, attach_flags=flags
    )
    bpf(Cmd.PROG_ATTACH, attr)


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    attr = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type)
    bpf(Cmd.PROG_DETACH, attr)


def prog_query(target_fd: int, attach_type: int, max_programs: int = 64) -> list[int]:
    """Ids of the programs attached to ``target_fd`` for ``attach_type``."""
    ids = (ctypes.c_uint32 * max_programs)()
    attr = ProgQueryAttr(
        target_fd=target_fd, attach_type=attach_type, prog_ids=_addr(ids), prog_cnt=max_programs
    )
    bpf(Cmd.PROG_QUERY, attr)
    return list(ids[: attr.prog_cnt])
