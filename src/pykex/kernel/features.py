"""What this kernel can do, found out by trying.

Each probe asks the kernel for one thing the way pykex itself would: load the
smallest valid program of a type, create the smallest valid map of a kind,
attach to a private target, call a kfunc. Kernel versions are never consulted:
distributions backport features and configurations switch them off, so only
the attempt tells the truth. Every result is cached for the life of the process.

>>> probe("program.xdp").available
True
>>> require("tracing.kprobe")       # raises FeatureUnavailableError naming it

Feature names are ``<category>.<what>``: ``program.<type>``, ``map.<type>``,
``attach.<hook>``, ``instruction.<form>``, ``helper.<name>``, ``kfunc.<name>``,
``tracing.<mechanism>`` and ``btf.<ability>``.
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from pykex.bpf import (
    R0,
    R1,
    R2,
    R3,
    R4,
    R10,
    Instruction,
    add64,
    call_helper,
    call_kfunc,
    call_local,
    encode,
    exit,
    jeq,
    ld_func,
    ld_map_fd,
    may_goto,
    mov64,
)
from pykex.btf import (
    BTFError,
    Builder,
    FuncInfo,
    FuncLinkage,
    Kind,
    Member,
    kernel_func_info,
    load_vmlinux,
)

from . import perf, syscall
from .errors import BPFError, NotSupportedError, VerifierError
from .fd import FD
from .uapi import (
    BPF_F_SLEEPABLE,
    AttachType,
    Cmd,
    MapCreateAttr,
    MapFlag,
    MapType,
    ProgType,
)

# Display order of the categories, with the title a person reads.
CATEGORIES: dict[str, str] = {
    "program": "Program types",
    "map": "Map types",
    "attach": "Attachment",
    "instruction": "Instructions",
    "helper": "Helpers",
    "kfunc": "Kernel functions (kfuncs)",
    "tracing": "Tracing mechanisms",
    "btf": "BTF",
}

# The kfuncs the compiler emits calls to, and what pykex uses each for.
KFUNCS = {
    "bpf_iter_num_new": "open-coded loops: start a numeric iterator",
    "bpf_iter_num_next": "open-coded loops: next number",
    "bpf_iter_num_destroy": "open-coded loops: end the iterator",
    "bpf_throw": "exceptions that unwind the program",
    "bpf_res_spin_lock": "resilient spin locks (deadlock-checked)",
}
_ITERATOR_KFUNCS = ("bpf_iter_num_new", "bpf_iter_num_next", "bpf_iter_num_destroy")

# The kernel's internal "not supported", which leaks to user space.
_ENOTSUPP = 524


@dataclass(frozen=True)
class Feature:
    """The outcome of one probe. ``reason`` says why when ``available`` is False."""

    name: str
    category: str
    description: str
    available: bool
    errno: int = 0
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class FeatureUnavailableError(NotSupportedError):
    """A feature pykex needs is missing; ``feature`` is its probe name."""

    def __init__(self, feature: Feature) -> None:
        super().__init__(feature.name, feature.errno or errno_codes.EOPNOTSUPP, feature.name)
        self.description = feature.description
        self.reason = feature.reason

    def __str__(self) -> str:
        return (
            f"this kernel does not support {self.description} ({self.feature}): {self.reason}"
        )


class _Unavailable(Exception):
    """Raised by a probe that finds a feature missing without a failed bpf(2) call."""

    def __init__(self, err: int, reason: str) -> None:
        super().__init__(reason)
        self.errno = err
        self.reason = reason


@dataclass(frozen=True)
class _Probe:
    category: str
    description: str
    attempt: Callable[[], None]  # returns when the feature works, raises when not


_PROBES: dict[str, _Probe] = {}


def _register(name: str, description: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def add(attempt: Callable[[], None]) -> Callable[[], None]:
        _PROBES[name] = _Probe(name.split(".", 1)[0], description, attempt)
        return attempt

    return add


# -- public interface ------------------------------------------------------------------------


def names() -> list[str]:
    """Every feature pykex can probe, in display order."""
    order = list(CATEGORIES)
    return sorted(_PROBES, key=lambda name: order.index(_PROBES[name].category))


@functools.cache
def probe(name: str) -> Feature:
    """Probe ``name`` once per process; later calls return the same :class:`Feature`."""
    spec = _PROBES.get(name)
    if spec is None:
        raise KeyError(f"unknown feature {name!r}; known features: {', '.join(names())}")
    try:
        spec.attempt()
    except (OSError, _Unavailable, BTFError) as failure:
        err, reason = _explain(failure)
        return Feature(name, spec.category, spec.description, False, err, reason)
    return Feature(name, spec.category, spec.description, True)


def probe_all() -> list[Feature]:
    """Every feature, probed (or taken from the cache), in display order."""
    return [probe(name) for name in names()]


def require(name: str) -> Feature:
    """Return the feature if the kernel has it; raise :class:`FeatureUnavailableError` if not."""
    feature = probe(name)
    if not feature.available:
        raise FeatureUnavailableError(feature)
    return feature


def _explain(failure: BaseException) -> tuple[int, str]:
    """errno and a one-line reason, in the kernel's own words where it gave any."""
    if isinstance(failure, _Unavailable):
        return failure.errno, failure.reason
    if isinstance(failure, BTFError):  # no kernel BTF, or a symbol missing from it
        return errno_codes.ENOENT, str(failure)
    assert isinstance(failure, OSError)
    err = failure.errno or 0
    code = errno_codes.errorcode.get(err, "ENOTSUPP" if err == _ENOTSUPP else str(err))
    command = f"{failure.command}: " if isinstance(failure, BPFError) else ""
    words = "not supported" if err == _ENOTSUPP else os.strerror(err)
    reason = f"{command}{code} ({words})"
    if isinstance(failure, VerifierError) and failure.log.strip():
        reason += f"; verifier: {failure.summary}"
    elif err == errno_codes.EPERM and syscall.has_bpf_capability():
        reason += ", although this process has CAP_BPF/CAP_SYS_ADMIN"
    elif err in (errno_codes.EPERM, errno_codes.EACCES):
        reason += "; needs CAP_BPF (or CAP_SYS_ADMIN)"
    return err, reason


# -- building blocks ---------------------------------------------------------------------------


def _code(*instructions: Instruction) -> bytes:
    return encode(instructions).code


_RETURN_0 = _code(mov64(R0, 0), exit())
_RETURN_1 = _code(mov64(R0, 1), exit())


def _load(
    prog_type: ProgType,
    code: bytes = _RETURN_0,
    *,
    feature: str | None = None,
    **options: int | bytes,
) -> FD:
    name = f"probe_{prog_type.name.lower()}"
    return syscall.prog_load(prog_type, code, name=name, feature=feature, **options).fd


def _vmlinux_id(name: str, kind: Kind) -> int:
    return load_vmlinux().find(name, kind).id


def _small_btf(build: Callable[[Builder], tuple[int, ...]]) -> tuple[FD, tuple[int, ...]]:
    """Load BTF made by ``build(builder)``; returns its fd and the ids ``build`` picked."""
    builder = Builder()
    ids = build(builder)
    return syscall.btf_load(builder.emit()), ids


def _int_btf() -> tuple[FD, int]:
    fd, (int_id,) = _small_btf(lambda b: (b.add_int("int", 4, signed=True),))
    return fd, int_id


# -- program types -----------------------------------------------------------------------------

# Types that refuse to load without naming the hook they are for.
_EXPECTED_ATTACH = {
    ProgType.CGROUP_SOCK: AttachType.CGROUP_INET_SOCK_CREATE,
    ProgType.CGROUP_SOCK_ADDR: AttachType.CGROUP_INET4_CONNECT,
    ProgType.CGROUP_SOCKOPT: AttachType.CGROUP_GETSOCKOPT,
    ProgType.SK_LOOKUP: AttachType.SK_LOOKUP,
    ProgType.NETFILTER: AttachType.NETFILTER,
}


def _program_attempt(prog_type: ProgType) -> Callable[[], None]:
    def attempt() -> None:
        feature = f"program type {prog_type.name.lower()}"
        options: dict[str, int] = {}
        if prog_type == ProgType.TRACING:  # a BTF-typed raw tracepoint (tp_btf)
            options["expected_attach_type"] = AttachType.TRACE_RAW_TP
            options["attach_btf_id"] = _vmlinux_id("btf_trace_sched_switch", Kind.TYPEDEF)
        elif prog_type == ProgType.LSM:
            options["expected_attach_type"] = AttachType.LSM_MAC
            options["attach_btf_id"] = _vmlinux_id("bpf_lsm_file_open", Kind.FUNC)
        elif prog_type == ProgType.STRUCT_OPS:
            _probe_struct_ops_program()
            return
        elif prog_type == ProgType.EXT:
            _probe_extension_program()
            return
        elif prog_type == ProgType.SYSCALL:  # only sleepable syscall programs exist
            options["prog_flags"] = BPF_F_SLEEPABLE
        else:
            options["expected_attach_type"] = _EXPECTED_ATTACH.get(prog_type, 0)
        _load(prog_type, feature=feature, **options).close()

    return attempt


def _probe_struct_ops_program() -> None:
    """Implement ``tcp_congestion_ops.ssthresh``, the struct_ops every kernel with TCP has."""
    ops = load_vmlinux().find("tcp_congestion_ops", Kind.STRUCT)
    member = [m.name for m in ops.members].index("ssthresh")
    _load(
        ProgType.STRUCT_OPS,
        _RETURN_1,
        expected_attach_type=member,
        attach_btf_id=ops.id,
        feature="program type struct_ops",
    ).close()


def _probe_extension_program() -> None:
    """Replace the main function of a tiny XDP program (both need BTF to match)."""

    def build(b: Builder) -> tuple[int, ...]:
        int_id = b.add_int("int", 4, signed=True)
        ctx = b.add_pointer(b.add_struct("xdp_md", 0, []))
        proto = b.add_func_proto(int_id, [("ctx", ctx)])
        return (b.add_func("probe_target", proto),)

    btf, (func_id,) = _small_btf(build)
    func_info = kernel_func_info([FuncInfo(0, func_id)])
    with btf, _load(ProgType.XDP, prog_btf_fd=int(btf), func_info=func_info) as target:
        syscall.prog_load(
            ProgType.EXT,
            _RETURN_0,
            prog_btf_fd=int(btf),
            func_info=func_info,
            attach_prog_fd=int(target),
            attach_btf_id=func_id,
            feature="program type ext",
        ).fd.close()


for _type in ProgType:
    if _type != ProgType.UNSPEC:
        _register(f"program.{_type.name.lower()}", f"{_type.name.lower()} programs")(
            _program_attempt(_type)
        )


# -- map types ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MapShape:
    """The smallest valid map of a type: what the kernel insists on for each kind."""

    key_size: int = 4
    value_size: int = 4
    max_entries: int = 1
    flags: int = 0
    inner_map: bool = False  # map-in-map: needs a template inner map
    btf_storage: bool = False  # local storage: needs BTF for key and value


_PAGE = os.sysconf("SC_PAGE_SIZE")
_MAP_SHAPES: dict[MapType, _MapShape] = {
    MapType.STACK_TRACE: _MapShape(value_size=8),  # an array of u64 addresses
    MapType.LPM_TRIE: _MapShape(key_size=5, flags=MapFlag.NO_PREALLOC),  # prefixlen + data
    MapType.ARRAY_OF_MAPS: _MapShape(inner_map=True),
    MapType.HASH_OF_MAPS: _MapShape(inner_map=True),
    MapType.CGROUP_STORAGE: _MapShape(key_size=16, max_entries=0),  # bpf_cgroup_storage_key
    MapType.PERCPU_CGROUP_STORAGE: _MapShape(key_size=16, max_entries=0),
    MapType.QUEUE: _MapShape(key_size=0),
    MapType.STACK: _MapShape(key_size=0),
    MapType.SK_STORAGE: _MapShape(max_entries=0, flags=MapFlag.NO_PREALLOC, btf_storage=True),
    MapType.INODE_STORAGE: _MapShape(max_entries=0, flags=MapFlag.NO_PREALLOC, btf_storage=True),
    MapType.TASK_STORAGE: _MapShape(max_entries=0, flags=MapFlag.NO_PREALLOC, btf_storage=True),
    MapType.CGRP_STORAGE: _MapShape(max_entries=0, flags=MapFlag.NO_PREALLOC, btf_storage=True),
    MapType.RINGBUF: _MapShape(key_size=0, value_size=0, max_entries=_PAGE),  # power-of-2 pages
    MapType.USER_RINGBUF: _MapShape(key_size=0, value_size=0, max_entries=_PAGE),
    MapType.BLOOM_FILTER: _MapShape(key_size=0),
    MapType.ARENA: _MapShape(key_size=0, value_size=0, flags=MapFlag.MMAPABLE),  # one page
}


def _map_attempt(map_type: MapType) -> Callable[[], None]:
    def attempt() -> None:
        if map_type == MapType.STRUCT_OPS:
            _probe_struct_ops_map()
            return
        shape = _MAP_SHAPES.get(map_type, _MapShape())
        feature = f"map type {map_type.name.lower()}"
        options: dict[str, int] = {"flags": shape.flags, "feature": feature}
        owned: list[FD] = []
        try:
            if shape.inner_map:
                inner = syscall.map_create(MapType.ARRAY, 4, 4, 1, name="probe_inner")
                owned.append(inner)
                options["inner_map_fd"] = int(inner)
            if shape.btf_storage:
                btf, int_id = _int_btf()
                owned.append(btf)
                options.update(btf_fd=int(btf), btf_key_type_id=int_id, btf_value_type_id=int_id)
            syscall.map_create(
                map_type, shape.key_size, shape.value_size, shape.max_entries,
                name="probe", **options,
            ).close()
        finally:
            for fd in owned:
                fd.close()

    return attempt


def _probe_struct_ops_map() -> None:
    """A tcp_congestion_ops map; the kernel wants some program BTF beside the vmlinux type."""
    vmlinux = load_vmlinux()
    value_type = vmlinux.find("bpf_struct_ops_tcp_congestion_ops")
    btf, _ = _int_btf()
    with btf:
        attr = MapCreateAttr(
            map_type=MapType.STRUCT_OPS,
            key_size=4,
            value_size=vmlinux.sizeof(value_type),
            max_entries=1,
            btf_fd=int(btf),
            btf_vmlinux_value_type_id=value_type.id,
        )
        FD(syscall.bpf(Cmd.MAP_CREATE, attr, "map type struct_ops"), "probe_struct_ops").close()


for _type in MapType:
    if _type != MapType.UNSPEC:
        _register(f"map.{_type.name.lower()}", f"{_type.name.lower()} maps")(_map_attempt(_type))


@_register("btf.spin_lock_in_map", "bpf_spin_lock in map values (described by BTF)")
def _spin_lock_in_map_value() -> None:
    def build(b: Builder) -> tuple[int, ...]:
        int_id = b.add_int("int", 4, signed=True)
        lock = b.add_spin_lock()
        value = b.add_struct("probe_value", 8, [Member("lock", lock, 0), Member("n", int_id, 32)])
        return int_id, value

    btf, (int_id, value_id) = _small_btf(build)
    with btf:
        syscall.map_create(
            MapType.HASH, 4, 8, 1, name="probe_lock", btf_fd=int(btf),
            btf_key_type_id=int_id, btf_value_type_id=value_id,
            feature="bpf_spin_lock in map values",
        ).close()


# -- instructions and helpers ------------------------------------------------------------------


@_register("instruction.may_goto", "may_goto (loops bounded by the kernel's time budget)")
def _may_goto() -> None:
    code = _code(may_goto("out"), mov64(R0, 0).with_label("out"), exit())
    _load(ProgType.XDP, code, feature="the may_goto instruction").close()


@_register("instruction.bpf_to_bpf_call", "BPF-to-BPF function calls")
def _bpf_to_bpf_call() -> None:
    code = _code(call_local("sub"), exit(), mov64(R0, 0).with_label("sub"), exit())
    _load(ProgType.XDP, code, feature="BPF-to-BPF calls").close()


@_register("helper.bpf_loop", "bpf_loop helper (callback loops)")
def _bpf_loop() -> None:
    code = encode([
        mov64(R1, 1),
        ld_func(R2, "body"),
        mov64(R3, 0),
        mov64(R4, 0),
        call_helper("bpf_loop"),
        mov64(R0, 0),
        exit(),
        mov64(R0, 0).with_label("body"),
        exit(),
    ])

    # Callbacks must be described in BTF: one FUNC per function.
    def build(b: Builder) -> tuple[int, ...]:
        long_id = b.add_int("long", 8, signed=True)
        pointer = b.add_pointer(0)
        main = b.add_func_proto(long_id, [("ctx", pointer)])
        body = b.add_func_proto(long_id, [("index", long_id), ("ctx", pointer)])
        static = FuncLinkage.STATIC
        return b.add_func("probe_main", main, static), b.add_func("probe_body", body, static)

    btf, (main_id, body_id) = _small_btf(build)
    func_info = kernel_func_info([FuncInfo(0, main_id), FuncInfo(code.symbols["body"], body_id)])
    with btf:
        _load(
            ProgType.XDP,
            code.code,
            prog_btf_fd=int(btf),
            func_info=func_info,
            feature="the bpf_loop helper",
        ).close()


@_register("helper.bpf_ringbuf_reserve", "ring buffer output (reserve and submit)")
def _ringbuf_output() -> None:
    with syscall.map_create(MapType.RINGBUF, 0, 0, _PAGE, name="probe_ringbuf") as ringbuf:
        code = _code(
            ld_map_fd(R1, int(ringbuf)),
            mov64(R2, 8),
            mov64(R3, 0),
            call_helper("bpf_ringbuf_reserve"),
            jeq(R0, 0, "out"),
            mov64(R1, R0),
            mov64(R2, 0),
            call_helper("bpf_ringbuf_submit"),
            mov64(R0, 0).with_label("out"),
            exit(),
        )
        _load(ProgType.XDP, code, feature="ring buffer output").close()


# -- kfuncs ------------------------------------------------------------------------------------


def _kfunc_id(name: str) -> int:
    return load_vmlinux().kfunc_id(name)


@functools.cache
def _iterator_load_failure() -> BaseException | None:
    """Load one program that runs a numeric open-coded iterator; its failure, if any."""
    ids = {name: _kfunc_id(name) for name in _ITERATOR_KFUNCS}

    def iterator_arg() -> tuple[Instruction, Instruction]:
        return mov64(R1, R10), add64(R1, -8)

    code = _code(
        *iterator_arg(),
        mov64(R2, 0),
        mov64(R3, 1),
        call_kfunc(ids["bpf_iter_num_new"]),
        *iterator_arg(),
        call_kfunc(ids["bpf_iter_num_next"]),
        *iterator_arg(),
        call_kfunc(ids["bpf_iter_num_destroy"]),
        mov64(R0, 0),
        exit(),
    )
    try:
        _load(ProgType.XDP, code, feature="open-coded numeric iterators").close()
    except BPFError as failure:
        return failure
    return None


def _kfunc_attempt(name: str) -> Callable[[], None]:
    def attempt() -> None:
        _kfunc_id(name)  # LookupError when vmlinux BTF does not list it as a kfunc
        if name in _ITERATOR_KFUNCS and (failure := _iterator_load_failure()) is not None:
            raise failure

    return attempt


for _kfunc, _use in KFUNCS.items():
    _register(f"kfunc.{_kfunc}", _use)(_kfunc_attempt(_kfunc))


# -- attachment ---------------------------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _in_private_netns(action: Callable[[int], None]) -> None:
    """Run ``action(ifindex of lo)`` on a thread moved into a new, unnamed network namespace.

    Network namespaces belong to threads, so the rest of the process stays where
    it is, and the namespace (with whatever was attached in it) vanishes when
    the thread ends: probing never touches a real interface.
    """
    failures: list[BaseException] = []

    def body() -> None:
        try:
            if _libc.unshare(_CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
            action(socket.if_nametoindex("lo"))
        except BaseException as failure:
            failures.append(failure)

    thread = threading.Thread(target=body, name="pykex-feature-probe")
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def _link_to(prog_type: ProgType, attach_type: AttachType, target_fd: int, feature: str) -> None:
    with _load(prog_type, _RETURN_1, expected_attach_type=attach_type) as prog:
        syscall.link_create(int(prog), target_fd, attach_type, feature=feature).close()


@_register("attach.xdp_link", "XDP through bpf_link")
def _xdp_link() -> None:
    _in_private_netns(lambda lo: _link_to(ProgType.XDP, AttachType.XDP, lo, "XDP links"))


@_register("attach.tcx", "tc programs through tcx links")
def _tcx() -> None:
    _in_private_netns(
        lambda lo: _link_to(ProgType.SCHED_CLS, AttachType.TCX_INGRESS, lo, "tcx links")
    )


@contextmanager
def _temporary_cgroup() -> Iterator[int]:
    root = _cgroup2_root()
    path = root / f"pykex-probe-{os.getpid()}-{threading.get_ident()}"
    path.mkdir()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        path.rmdir()


def _cgroup2_root() -> Path:
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return Path(fields[1])
    raise _Unavailable(errno_codes.ENOENT, "no cgroup2 file system is mounted")


@_register("attach.cgroup_link", "cgroup programs through bpf_link")
def _cgroup_link() -> None:
    with _temporary_cgroup() as cgroup:  # never the root cgroup: that is the whole machine
        _link_to(ProgType.CGROUP_SKB, AttachType.CGROUP_INET_INGRESS, cgroup, "cgroup links")


def _disabled_cpu_clock_event() -> FD:
    """A sampling CPU-clock event on this process, created disabled so it never fires."""
    attr = perf.PerfEventAttr(
        type=perf.PerfType.SOFTWARE,
        config=perf.SoftwareEvent.CPU_CLOCK,
        sample_period=1_000_000,
        flags=perf.ATTR_DISABLED,
    )
    return perf.perf_event_open(attr, pid=0, cpu=-1, what="cpu-clock")


@_register("attach.perf_event_link", "perf event programs through bpf_link")
def _perf_event_link() -> None:
    with _disabled_cpu_clock_event() as event:
        _link_to(ProgType.PERF_EVENT, AttachType.PERF_EVENT, int(event), "perf event links")


@_register("attach.raw_tracepoint", "raw tracepoint attachment")
def _raw_tracepoint() -> None:
    with _load(ProgType.RAW_TRACEPOINT) as prog:
        syscall.raw_tracepoint_open("sched_switch", int(prog)).close()


# -- tracing mechanisms ----------------------------------------------------------------------------

_PMU_ROOT = Path(perf.PMU_ROOT)


def _pmu_attempt(pmu: str, config: str) -> Callable[[], None]:
    def attempt() -> None:
        if not (_PMU_ROOT / pmu).is_dir():
            raise _Unavailable(
                errno_codes.ENOENT,
                f"no {pmu} PMU in {_PMU_ROOT} (kernel built without {config})",
            )

    return attempt


for _pmu, _config in (
    ("kprobe", "CONFIG_KPROBES"),
    ("uprobe", "CONFIG_UPROBE_EVENTS"),
    ("tracepoint", "CONFIG_TRACEPOINTS"),
):
    _register(f"tracing.{_pmu}", f"{_pmu}s through perf events")(_pmu_attempt(_pmu, _config))


@_register("tracing.fentry", "fentry/fexit programs (BPF trampolines)")
def _fentry() -> None:
    target = _vmlinux_id("bpf_fentry_test1", Kind.FUNC)
    _load(
        ProgType.TRACING,
        expected_attach_type=AttachType.TRACE_FENTRY,
        attach_btf_id=target,
        feature="fentry programs",
    ).close()


# -- BTF ---------------------------------------------------------------------------------------


@_register("btf.vmlinux", "kernel BTF (/sys/kernel/btf/vmlinux)")
def _vmlinux_btf() -> None:
    load_vmlinux()


@_register("btf.load", "loading program BTF")
def _btf_load() -> None:
    _int_btf()[0].close()
