"""Executing IR in Python, exactly as the kernel runs the code pykex generates.

This is the engine of host mode and the oracle of the backend's differential
tests. Memory is Python ``bytearray``s: the program's frame (kept per CPU
across runs, as the kernel's per-CPU frame map is), map values, the context
and the packet. Temps hold Python ints normalised to their type, or
:class:`Pointer`\\s. Maps are emulated (:class:`HostMap`), so are the common
helpers; the loop budget of ``may_goto`` is an iteration count.

The arithmetic functions (:func:`binop`, :func:`unop`, :func:`cast`,
:func:`compare`) define the IR's semantics once; the constant folder uses
them too, so folded results equal run-time results.
"""

from __future__ import annotations

import errno
import os
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from .nodes import Assign as AssignInstr
from .nodes import (
    AtomicAdd,
    BinOp,
    Block,
    Branch,
    Call,
    Cast,
    Compare,
    ContextPtr,
    FrameAddr,
    Function,
    GlobalAddr,
    Instr,
    Jump,
    Load,
    Loc,
    LoopBack,
    MapDecl,
    MapRef,
    MemCopy,
    MemZero,
    ModuleIR,
    PacketLen,
    PacketPtr,
    ProgramIR,
    Raise,
    Return,
    Scalar,
    Store,
    Temp,
    UnOp,
    Value,
)

MASK64 = (1 << 64) - 1
MAX_PACKET_OFFSET = 0xFFFF
DEFAULT_LOOP_BUDGET = 1 << 20
RAISE_ARGS = 4

# Context sizes of test runs: the packet kinds' as the kernel accepts them, a
# kprobe's struct pt_regs (x86-64) and a perf event's bpf_perf_event_data.
PT_REGS_SIZE = 168
CONTEXT_SIZES = {"xdp": 24, "tc": 192, "socket_filter": 192, "cgroup_skb": 192,
                 "raw_tracepoint": 96, "kprobe": PT_REGS_SIZE, "perf_event": PT_REGS_SIZE + 16}

# How BPF_PROG_TEST_RUN lays out packets. Socket filters and cgroup skb programs
# see the packet from the network header (the Ethernet header is pulled before
# the run, and comes back zeroed); tc programs from the Ethernet header.
ETH_HLEN = 14
SKB_KINDS = frozenset({"tc", "socket_filter", "cgroup_skb"})
NETWORK_HEADER_KINDS = frozenset({"socket_filter", "cgroup_skb"})
LOOPBACK_IFINDEX = 1  # the device test runs happen on
# An XDP test run's frame: one page, the packet XDP_PACKET_HEADROOM bytes in;
# struct xdp_frame sits at its start and struct skb_shared_info at its end.
XDP_FRAME_SIZE = 4096
XDP_HEADROOM = 256
XDP_FRAME_HEADER = 40
XDP_TAILROOM = 320
XDP_REDIRECT = 4
TC_ACT_REDIRECT = 7
TC_ACT_SHOT = 2
XDP_ACTION_MASK = 3  # the fallback verdicts bpf_redirect_map accepts in its flags

# struct __sk_buff offsets a test run fills in (uapi, fixed).
SKB_LEN, SKB_PKT_TYPE, SKB_MARK, SKB_PROTOCOL = 0, 4, 8, 16
SKB_PRIORITY, SKB_INGRESS_IFINDEX, SKB_IFINDEX = 32, 36, 40
SKB_CB, SKB_CB_SIZE, SKB_TSTAMP, SKB_WIRE_LEN = 48, 20, 152, 160
XDP_MD_DATA, XDP_MD_DATA_END, XDP_MD_INGRESS_IFINDEX = 0, 4, 12

PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST = 0, 2, 3
ETH_P_802_3, ETH_P_802_2, ETH_P_802_3_MIN = 0x0001, 0x0004, 0x0600

# Flags of the stack helpers.
BPF_F_SKIP_FIELD_MASK = 0xFF
BPF_F_USER_STACK = 1 << 8
BPF_F_REUSE_STACKID = 1 << 10
BPF_F_CURRENT_CPU = 0xFFFFFFFF

# x86-64 address spaces: user memory ends below TASK_SIZE_MAX; kernel memory
# starts at the canonical upper half.
USER_SPACE_END = 0x7FFF_FFFF_F000
KERNEL_SPACE_START = 0xFFFF_8000_0000_0000
TASK_COMM_LEN = 16


class InterpreterError(Exception):
    """The IR did something the kernel's verifier would have refused (a pykex bug)."""


# -- the arithmetic ---------------------------------------------------------------


def to_u64(value: int) -> int:
    return value & MASK64


def to_s64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


def binop(op: str, a: int, b: int, ty: Scalar) -> int:
    """``a <op> b`` normalised to ``ty`` (operands are normalised values)."""
    if op == "add":
        result = a + b
    elif op == "sub":
        result = a - b
    elif op == "mul":
        result = a * b
    elif op in ("div", "mod"):
        if b == 0:
            raise InterpreterError("division by zero reached the backend")
        if not ty.signed:  # registers hold the unsigned view
            a, b = to_u64(a), to_u64(b)
        result = a // b if op == "div" else a % b
    elif op == "and":
        result = a & b
    elif op == "or":
        result = a | b
    elif op == "xor":
        result = a ^ b
    elif op == "shl":
        result = 0 if to_u64(b) >= ty.bits else a << b
    elif op == "shr":
        amount = min(to_u64(b), 64)
        result = (a if ty.signed else to_u64(a)) >> amount
    else:
        raise InterpreterError(f"unknown binary operation {op!r}")
    return ty.normalize(result)


def unop(op: str, a: int, ty: Scalar) -> int:
    if op == "neg":
        return ty.normalize(-a)
    if op == "invert":
        return ty.normalize(~a)
    if op == "not":
        return a ^ 1
    raise InterpreterError(f"unknown unary operation {op!r}")


def cast(a: int, to: Scalar) -> int:
    return to.normalize(a)


def compare(op: str, a: int, b: int, signed: bool) -> bool:
    """The comparison the jump instructions make on 64-bit register contents."""
    a, b = (to_s64(a), to_s64(b)) if signed else (to_u64(a), to_u64(b))
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if op == "lt":
        return a < b
    if op == "le":
        return a <= b
    if op == "gt":
        return a > b
    if op == "ge":
        return a >= b
    raise InterpreterError(f"unknown comparison {op!r}")


# -- memory and maps ----------------------------------------------------------------


@dataclass(frozen=True)
class Pointer:
    """``memory[offset]``; ``region`` names the memory for messages."""

    memory: bytearray = field(repr=False)
    offset: int
    region: str

    def moved(self, delta: int) -> Pointer:
        return Pointer(self.memory, self.offset + delta, self.region)

    def view(self, offset: int, size: int) -> memoryview:
        start = self.offset + offset
        if start < 0 or start + size > len(self.memory):
            raise InterpreterError(
                f"access of {size} bytes at offset {start} of {self.region} "
                f"({len(self.memory)} bytes) is out of bounds"
            )
        return memoryview(self.memory)[start : start + size]


class FakeMemory:
    """What the probe-read helpers can read in a host run: ``{address: bytes}``
    regions (adjacent ones join). Everything else faults, as unmapped memory
    does for the kernel's helpers."""

    def __init__(self, regions: Mapping[int, bytes] | None = None) -> None:
        merged: list[tuple[int, bytearray]] = []
        for start, data in sorted((regions or {}).items()):
            if merged and merged[-1][0] + len(merged[-1][1]) >= start:
                base, joined = merged[-1]
                joined[start - base : start - base + len(data)] = data
            else:
                merged.append((start, bytearray(data)))
        self.regions = [(start, bytes(data)) for start, data in merged]

    def read(self, address: int, size: int) -> bytes | None:
        """``size`` bytes at ``address``, or None when any of them is unmapped."""
        for start, data in self.regions:
            if start <= address and address + size <= start + len(data):
                return data[address - start : address - start + size]
        return None

    def readable(self, address: int) -> int:
        """How many bytes from ``address`` on are mapped (0: none)."""
        for start, data in self.regions:
            if start <= address < start + len(data):
                return start + len(data) - address
        return 0


DEFAULT_TASK_ADDRESS = 0xFFFF_8880_0100_0000


@dataclass(frozen=True)
class HostProcess:
    """The task a host-mode run happens in: what ``pid_tgid()``, ``uid_gid()``,
    ``comm()``, ``current_task()`` and the stack helpers see.

    ``pid`` is the thread id, ``tgid`` the process id, ``ppid`` the parent
    process's id. ``memory`` holds readable ``{address: bytes}`` regions (user
    addresses below 2**47, kernel ones in the upper half); the task itself
    lives at ``task_address`` in kernel memory, with ``task`` setting further
    ``task_struct`` members by path (``{"se.vruntime": 5}``). Stacks are return
    addresses, innermost first; empty ones make the helpers fail as they do
    for a task without one.
    """

    pid: int = 1
    tgid: int = 1
    ppid: int = 0
    uid: int = 0
    gid: int = 0
    comm: bytes = b""
    task_address: int = DEFAULT_TASK_ADDRESS
    kernel_stack: tuple[int, ...] = ()
    user_stack: tuple[int, ...] = ()
    memory: Mapping[int, bytes] = field(default_factory=dict)
    task: Mapping[str, int | bytes] = field(default_factory=dict)

    @classmethod
    def current(cls, **changes: object) -> HostProcess:
        """This Python thread and process (what a kernel test run of a tracing
        program sees, as it runs in the caller), with ``changes`` applied."""
        thread = threading.get_native_id()
        try:
            with open(f"/proc/self/task/{thread}/comm", "rb") as f:
                name = f.read().rstrip(b"\n")
        except OSError:  # not Linux
            name = b"python"
        process = cls(pid=thread, tgid=os.getpid(), ppid=os.getppid(), uid=os.getuid(),
                      gid=os.getgid(), comm=name)
        return replace(process, **changes)  # type: ignore[arg-type]


PER_CPU_KINDS = {"PERCPU_ARRAY", "PERCPU_HASH", "LRU_PERCPU_HASH"}
ARRAY_KINDS = {"ARRAY", "PERCPU_ARRAY"}
HASH_KINDS = {"HASH", "PERCPU_HASH", "LRU_HASH", "LRU_PERCPU_HASH"}
# Hash kinds whose update of an existing key installs a new element (the
# per-CPU ones copy into the existing element instead).
REPLACED_ON_UPDATE = {"HASH", "LRU_HASH"}
EVENT_KINDS = {"RINGBUF", "PERF_EVENT_ARRAY"}
# Arrays whose slots may be empty: interface indexes, programs (by Interpreter.program_id).
SLOT_KINDS = {"DEVMAP", "PROG_ARRAY"}
MAX_TAIL_CALLS = 33  # MAX_TAIL_CALL_CNT: the tail call after these does nothing
PERF_BUFFER_BYTES = 8 * 4096  # per CPU: what an extension's perf reader maps
BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2


def ring_space(size: int) -> int:
    """Bytes a ring buffer record of ``size`` takes: an 8-byte header, 8-aligned."""
    return (size + 8 + 7) & ~7


class HostMap:
    """A map emulated in Python. Arrays are zero-filled; per-CPU kinds keep
    one value per CPU; ring buffers and perf event arrays collect records in
    :attr:`records` (a perf sample padded as perf delivers it); LPM tries
    match the longest prefix; stack trace maps hold stacks by id."""

    def __init__(self, decl: MapDecl, cpus: int) -> None:
        self.decl = decl
        self.cpus = cpus
        self.per_cpu = decl.kind in PER_CPU_KINDS
        self.records: list[bytes] = []
        self.entries: dict[bytes, list[bytearray]] = {}
        self._perf_used: dict[int, int] = {}  # bytes each CPU's perf buffer holds
        self.pending = 0  # ring space of records reserved but not yet submitted
        self.discarded = 0  # ring space of discarded records the reader has not passed
        if decl.kind in ARRAY_KINDS:
            for index in range(decl.max_entries):
                self.entries[index.to_bytes(4, "little")] = self._fresh()
            if decl.initial is not None:
                for value in self.entries[bytes(4)]:
                    value[: len(decl.initial)] = decl.initial
        elif decl.kind not in HASH_KINDS | EVENT_KINDS | SLOT_KINDS | {"LPM_TRIE", "STACK_TRACE"}:
            raise InterpreterError(f"map kind {decl.kind} is not emulated")

    def _fresh(self) -> list[bytearray]:
        copies = self.cpus if self.per_cpu else 1
        return [bytearray(self.decl.value_size) for _ in range(copies)]

    def _slot(self, values: list[bytearray], cpu: int) -> bytearray:
        return values[cpu if self.per_cpu else 0]

    def find(self, key: bytes) -> list[bytearray] | None:
        """The values stored under ``key`` (an LPM trie: under its longest matching prefix)."""
        if self.decl.kind == "LPM_TRIE":
            return self._longest_match(bytes(key))
        return self.entries.get(bytes(key))

    def lookup(self, key: bytes, cpu: int) -> bytearray | None:
        values = self.find(key)
        return None if values is None else self._slot(values, cpu)

    def update(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        key = bytes(key)
        if self.decl.kind == "LPM_TRIE":
            return self._lpm_update(key, value, flags)
        present = key in self.entries
        if self.decl.kind in ARRAY_KINDS | SLOT_KINDS:
            if int.from_bytes(key, "little") >= self.decl.max_entries:
                return -errno.E2BIG
            if flags == BPF_NOEXIST:
                return -errno.EEXIST
        elif flags == BPF_NOEXIST and present:
            return -errno.EEXIST
        elif flags == BPF_EXIST and not present:
            return -errno.ENOENT
        elif not present and len(self.entries) >= self.decl.max_entries:
            if not self.decl.kind.startswith("LRU"):
                return -errno.E2BIG
            del self.entries[next(iter(self.entries))]
        if not present or self.decl.kind in REPLACED_ON_UPDATE:
            # The kernel links a new element in place of an existing one: a
            # reference taken before the update still reads the old value.
            self.entries[key] = self._fresh()
        self._slot(self.entries[key], cpu)[:] = value
        return 0

    def delete(self, key: bytes) -> int:
        if self.decl.kind in ARRAY_KINDS:
            return -errno.EINVAL
        if self.decl.kind in SLOT_KINDS:  # clearing a slot, empty or not
            if int.from_bytes(key, "little") >= self.decl.max_entries:
                return -errno.EINVAL
            self.entries.pop(bytes(key), None)
            return 0
        if self.decl.kind == "LPM_TRIE":
            stored = self._lpm_exact(bytes(key))
            if stored is None:
                return -errno.ENOENT
            key = stored
        return 0 if self.entries.pop(bytes(key), None) is not None else -errno.ENOENT

    # -- LPM tries: a u32 prefix length, then the data, compared bit by bit from the first

    def _prefix(self, key: bytes, length: int) -> int:
        data = int.from_bytes(key[4:], "big")
        bits = 8 * (len(key) - 4)
        return data >> (bits - length) if length else 0

    def _longest_match(self, key: bytes) -> list[bytearray] | None:
        wanted = int.from_bytes(key[:4], "little")
        lengths = [(int.from_bytes(stored[:4], "little"), stored) for stored in self.entries]
        matches = [(length, stored) for length, stored in lengths if length <= wanted
                   and self._prefix(stored, length) == self._prefix(key, length)]
        return self.entries[max(matches)[1]] if matches else None

    def _lpm_exact(self, key: bytes) -> bytes | None:
        """The stored key with the same prefix length and prefix as ``key``."""
        length = int.from_bytes(key[:4], "little")
        for stored in self.entries:
            if (int.from_bytes(stored[:4], "little") == length
                    and self._prefix(stored, length) == self._prefix(key, length)):
                return stored
        return None

    def _lpm_update(self, key: bytes, value: bytes, flags: int) -> int:
        if int.from_bytes(key[:4], "little") > 8 * (len(key) - 4):
            return -errno.EINVAL
        stored = self._lpm_exact(key)
        if stored is not None:
            if flags == BPF_NOEXIST:
                return -errno.EEXIST
            del self.entries[stored]  # the trie keeps the newer key's bytes
        elif flags == BPF_EXIST:
            return -errno.ENOENT
        elif len(self.entries) >= self.decl.max_entries:
            return -errno.ENOSPC
        self.entries[key] = [bytearray(value)]
        return 0

    # -- events ------------------------------------------------------------------------

    def output(self, record: bytes) -> int:
        used = self.pending + self.discarded + sum(ring_space(len(r)) for r in self.records)
        # The producer stays less than a whole ring ahead of the reader.
        if used + ring_space(len(record)) >= self.decl.max_entries:
            return -errno.EAGAIN
        self.records.append(bytes(record))
        return 0

    def perf_output(self, record: bytes, cpu: int) -> int:
        """A sample into ``cpu``'s perf buffer: its raw data is padded so that
        it and its u32 size fill whole 8-byte words, after an 8-byte header."""
        padded = ((len(record) + 4 + 7) & ~7) - 4
        space = 8 + 4 + padded
        if not self.records:
            self._perf_used.clear()  # the reader took everything
        if self._perf_used.get(cpu, 0) + space > PERF_BUFFER_BYTES:
            return -errno.ENOSPC
        self._perf_used[cpu] = self._perf_used.get(cpu, 0) + space
        self.records.append(bytes(record).ljust(padded, b"\0"))
        return 0

    def take_records(self) -> list[bytes]:
        """The records sent so far, oldest first; they leave the map (consumed)."""
        taken, self.records = self.records, []
        self._perf_used.clear()
        self.discarded = 0
        return taken

    # -- stack traces ------------------------------------------------------------------

    def stack_id(self, stack: tuple[int, ...], flags: int) -> int:
        """Store ``stack`` (what bpf_get_stackid found) and return its id."""
        depth = self.decl.value_size // 8
        frames = stack[flags & BPF_F_SKIP_FIELD_MASK :][:depth]
        if not frames:
            return -errno.EFAULT
        buckets = 1 << max(self.decl.max_entries - 1, 0).bit_length()
        raw = b"".join(to_u64(ip).to_bytes(8, "little") for ip in frames)
        stack_id = zlib.crc32(raw) & (buckets - 1)
        key = stack_id.to_bytes(4, "little")
        value = raw.ljust(self.decl.value_size, b"\0")
        held = self.entries.get(key)
        if held is not None and bytes(held[0]) != value and not flags & BPF_F_REUSE_STACKID:
            return -errno.EEXIST
        self.entries[key] = [bytearray(value)]
        return stack_id


# -- running ------------------------------------------------------------------------


@dataclass(frozen=True)
class RaisedException:
    """An exception the program raised: what the error channel reports."""

    kind: str
    message: str
    args: tuple[int, ...]
    locs: tuple[Loc, ...]  # innermost first

    def format(self) -> str:
        count = self.message.count("{}")
        shown = list(self.args[:count]) + ["?"] * (count - len(self.args))
        return f"{self.kind}: {self.message.format(*shown)}" if self.message else self.kind


@dataclass
class RunResult:
    """``retval`` as BPF_PROG_TEST_RUN reports it (the low 32 bits of r0);
    ``packet`` and ``ctx`` as it hands them back."""

    retval: int
    exception: RaisedException | None
    packet: bytes
    steps: int
    ctx: bytes = b""


class Interpreter:
    """Runs the programs of one module against emulated maps.

    ``cpu`` is the CPU the runs happen on (per-CPU maps and frames),
    ``loop_budget`` the number of loop back edges one run may take before
    ``may_goto`` gives up, ``seed`` seeds ``bpf_get_prandom_u32``.
    ``process`` is the task the runs happen in (this thread by default) and
    ``memory`` what the probe-read helpers find (the process's own regions
    when None).
    """

    def __init__(
        self,
        module: ModuleIR,
        *,
        cpu: int = 0,
        cpus: int | None = None,
        loop_budget: int = DEFAULT_LOOP_BUDGET,
        seed: int = 0,
        clock: Callable[[], int] = time.monotonic_ns,
        process: HostProcess | None = None,
        memory: FakeMemory | None = None,
    ) -> None:
        self.module = module
        self.process = process if process is not None else HostProcess.current()
        self.memory = memory if memory is not None else FakeMemory(self.process.memory)
        self.cpus = cpus if cpus is not None else max(os.cpu_count() or 1, cpu + 1)
        self.cpu = cpu
        self.loop_budget = loop_budget
        self.random = random.Random(seed)
        self.clock = clock
        self.maps = {decl.name: HostMap(decl, self.cpus) for decl in module.maps}
        self.frames: dict[tuple[str, int], bytearray] = {}
        self.trace: list[str] = []  # bpf_trace_printk output
        self.exceptions: list[RaisedException] = []
        self._reserved: dict[int, tuple[HostMap, bytearray]] = {}  # ring buffer records held

    def program(self, name: str) -> ProgramIR:
        for program in self.module.programs:
            if program.name == name:
                return program
        raise KeyError(f"module {self.module.file} has no program {name!r}")

    def program_id(self, name: str) -> int:
        """What a ``PROG_ARRAY`` slot holds for program ``name`` (the kernel keeps
        program ids there): its position in the module, counting from 1."""
        return self.module.programs.index(self.program(name)) + 1

    def frame(self, program: ProgramIR) -> bytearray:
        key = (program.name, self.cpu)
        if key not in self.frames:
            size = max((program.function.frame_size + 7) & ~7, 8)
            self.frames[key] = bytearray(size)
        return self.frames[key]

    def run(
        self,
        name: str,
        packet: bytes | bytearray = b"",
        ctx: bytes | bytearray | None = None,
        *,
        test_run: bool = False,
    ) -> RunResult:
        """Run program ``name`` on ``packet`` and ``ctx`` as given, or with
        ``test_run`` as BPF_PROG_TEST_RUN would: socket filters and cgroup skb
        programs see the packet from the network header, skb contexts get the
        fields the kernel derives from the frame, XDP the loopback device's
        ifindex; the packet and context come back as the kernel returns them."""
        program = self.program(name)
        size = CONTEXT_SIZES.get(program.kind, 64)
        context = bytearray(ctx if ctx is not None else bytes(size))
        data = bytearray(packet)
        as_kernel = test_run and program.kind in SKB_KINDS | {"xdp"}
        if as_kernel and program.kind in NETWORK_HEADER_KINDS:
            data = data[ETH_HLEN:]
        run = _Run(self, program, data, context)
        if program.kind == "xdp":
            run.start_xdp_frame()
        if as_kernel and program.kind in SKB_KINDS:
            _fill_skb_context(context, bytes(packet), len(data))
        elif as_kernel and not _get32(context, XDP_MD_INGRESS_IFINDEX):
            _put32(context, XDP_MD_INGRESS_IFINDEX, LOOPBACK_IFINDEX)
        retval, exception = run.execute()
        if exception is not None:
            self.exceptions.append(exception)
        out = run.packet_bytes()
        ctx_out = bytes(context)
        if as_kernel:
            if program.kind in NETWORK_HEADER_KINDS:
                out = bytes(ETH_HLEN) + out  # the pulled header comes back zeroed
            ctx_out = _context_out(program.kind, bytes(ctx or b""), context, len(out))
        return RunResult(retval & 0xFFFFFFFF, exception, out, run.steps, ctx_out)


class _TailCall(Exception):
    """Raised by the tail call helper to leave the current program for ``program``."""

    def __init__(self, program: ProgramIR) -> None:
        super().__init__(program.name)
        self.program = program


class _Run:
    def __init__(
        self, machine: Interpreter, program: ProgramIR, packet: bytearray, ctx: bytearray
    ) -> None:
        self.machine = machine
        self.program = program
        self.function: Function = program.function
        # The packet is buffer[data:data_end]; XDP's buffer is the whole frame,
        # so that moving its start or end finds the bytes the kernel would.
        self.buffer = packet
        self.data, self.data_end = 0, len(packet)
        self.ctx = ctx
        self.locks: list[tuple[int, int]] = []  # (memory, offset) of the spin lock held
        self.reserved = machine._reserved
        self.frame = machine.frame(program)
        self.values: dict[Temp, int | Pointer | HostMap] = {}
        self.budget = machine.loop_budget
        self.steps = 0
        self.blocks = {b.label: b for b in self.function.blocks}
        self.tail_calls = 0

    def start_xdp_frame(self) -> None:
        """Place the packet in a page-sized frame as an XDP test run does."""
        length = len(self.buffer)
        room = max(XDP_FRAME_SIZE, XDP_HEADROOM + length + XDP_TAILROOM)
        frame = bytearray(room)
        frame[XDP_HEADROOM : XDP_HEADROOM + length] = self.buffer
        self.buffer, self.data, self.data_end = frame, XDP_HEADROOM, XDP_HEADROOM + length

    def packet_bytes(self) -> bytes:
        return bytes(self.buffer[self.data : self.data_end])

    def check_released(self) -> None:
        """The verifier refuses programs that can exit holding a lock or a record."""
        if self.locks:
            raise InterpreterError(f"program {self.program.name} exits holding a spin lock")
        if self.reserved:
            raise InterpreterError(
                f"program {self.program.name} exits holding an unsubmitted ring buffer record"
            )

    def value(self, v: Value) -> int | Pointer | HostMap:
        if isinstance(v, int):
            return v
        if v not in self.values:
            raise InterpreterError(f"{v} is read before it is written")
        return self.values[v]

    def scalar(self, v: Value) -> int:
        value = self.value(v)
        if not isinstance(value, int):
            raise InterpreterError(f"{v} holds a pointer where a number is expected")
        return value

    def pointer(self, v: Value) -> Pointer:
        value = self.value(v)
        if not isinstance(value, Pointer):
            raise InterpreterError(f"{v} is dereferenced but holds {value!r}")
        return value

    def execute(self) -> tuple[int, RaisedException | None]:
        block = self.function.blocks[0]
        while True:
            try:
                outcome = self.run_block(block)
            except _TailCall as jump:
                self.enter(jump.program)
                block = self.function.blocks[0]
                continue
            if isinstance(outcome, str):
                block = self.blocks[outcome]
                continue
            return outcome

    def enter(self, program: ProgramIR) -> None:
        """Go on as ``program``, on the same packet and context (a tail call)."""
        self.check_released()
        self.program = program
        self.function = program.function
        self.frame = self.machine.frame(program)
        self.values = {}
        self.blocks = {b.label: b for b in self.function.blocks}

    def run_block(self, block: Block) -> str | tuple[int, RaisedException | None]:
        for instr in block.instrs:
            self.steps += 1
            if isinstance(instr, Jump):
                return instr.target
            if isinstance(instr, Branch):
                taken = self.compare_values(instr.op, instr.a, instr.b, instr.signed)
                return instr.then if taken else instr.orelse
            if isinstance(instr, LoopBack):
                if self.budget <= 0:
                    return instr.exhausted
                self.budget -= 1
                return instr.target
            if isinstance(instr, Return):
                self.check_released()
                return self.scalar(instr.value), None
            if isinstance(instr, Raise):
                self.check_released()
                args = tuple(self.scalar(a) for a in instr.args[:RAISE_ARGS])
                locs = tuple(instr.loc.chain()) if instr.loc else ()
                return self.program.on_error, RaisedException(
                    instr.kind, instr.message, args, locs
                )
            if isinstance(instr, PacketPtr):
                fail = self.packet_pointer(instr)
                if fail is not None:
                    return fail
                continue
            self.step(instr)
        raise InterpreterError(f"block {block.label} has no terminator")

    def compare_values(self, op: str, a: Value, b: Value, signed: bool) -> bool:
        left, right = self.value(a), self.value(b)
        if isinstance(left, int) and isinstance(right, int):
            return compare(op, left, right, signed)
        if op in ("eq", "ne") and 0 in (left, right):  # a NULL test
            is_null = (left if right == 0 else right) == 0
            return is_null == (op == "eq")
        if isinstance(left, Pointer) and isinstance(right, Pointer):
            if left.memory is not right.memory:
                raise InterpreterError(f"comparing pointers into {left.region} and {right.region}")
            return compare(op, left.offset, right.offset, signed)
        raise InterpreterError(f"cannot compare {left!r} with {right!r}")

    def packet_pointer(self, instr: PacketPtr) -> str | None:
        offset = to_u64(self.scalar(instr.offset))
        end = offset + instr.size
        if end > MAX_PACKET_OFFSET or end > self.data_end - self.data:
            return instr.fail
        self.values[instr.dst] = Pointer(self.buffer, self.data + offset, "the packet")
        return None

    def step(self, instr: Instr) -> None:
        handler = _HANDLERS.get(type(instr))
        if handler is None:
            raise InterpreterError(f"cannot interpret {type(instr).__name__}: {instr}")
        handler(self, instr)

    # -- instructions -------------------------------------------------------------

    def assign(self, instr: AssignInstr) -> None:
        self.values[instr.dst] = self.value(instr.src)

    def binop(self, instr: BinOp) -> None:
        a = self.value(instr.a)
        if isinstance(a, Pointer):
            if instr.op not in ("add", "sub"):
                raise InterpreterError(f"{instr.op} on a pointer")
            delta = self.scalar(instr.b)
            self.values[instr.dst] = a.moved(delta if instr.op == "add" else -delta)
            return
        self.values[instr.dst] = binop(instr.op, self.scalar(instr.a), self.scalar(instr.b),
                                       instr.ty)

    def unop(self, instr: UnOp) -> None:
        self.values[instr.dst] = unop(instr.op, self.scalar(instr.a), instr.ty)

    def cast(self, instr: Cast) -> None:
        self.values[instr.dst] = cast(self.scalar(instr.a), instr.to)

    def compare(self, instr: Compare) -> None:
        taken = self.compare_values(instr.op, instr.a, instr.b, instr.signed)
        self.values[instr.dst] = int(taken)

    def load(self, instr: Load) -> None:
        raw = self.pointer(instr.base).view(instr.offset, instr.ty.size)
        order = "big" if instr.big_endian else "little"
        self.values[instr.dst] = instr.ty.normalize(int.from_bytes(raw, order))

    def store(self, instr: Store) -> None:
        view = self.pointer(instr.base).view(instr.offset, instr.ty.size)
        order = "big" if instr.big_endian else "little"
        value = self.scalar(instr.src) & instr.ty.mask
        view[:] = value.to_bytes(instr.ty.size, order)

    def atomic_add(self, instr: AtomicAdd) -> None:
        view = self.pointer(instr.base).view(instr.offset, instr.ty.size)
        total = int.from_bytes(view, "little") + self.scalar(instr.src)
        view[:] = (total & instr.ty.mask).to_bytes(instr.ty.size, "little")

    def frame_addr(self, instr: FrameAddr) -> None:
        self.values[instr.dst] = Pointer(self.frame, instr.offset, "the frame")

    def context_ptr(self, instr: ContextPtr) -> None:
        self.values[instr.dst] = Pointer(self.ctx, 0, "the context")

    def global_addr(self, instr: GlobalAddr) -> None:
        host = self.map(instr.map)
        value = host.lookup(bytes(4), self.machine.cpu)
        if value is None:
            raise InterpreterError(f"global map {instr.map} has no element 0")
        self.values[instr.dst] = Pointer(value, instr.offset, f"map {instr.map}")

    def map_ref(self, instr: MapRef) -> None:
        self.values[instr.dst] = self.map(instr.map)

    def map(self, name: str) -> HostMap:
        try:
            return self.machine.maps[name]
        except KeyError:
            raise InterpreterError(f"map {name!r} is not declared") from None

    def packet_len(self, instr: PacketLen) -> None:
        self.values[instr.dst] = self.data_end - self.data

    def mem_copy(self, instr: MemCopy) -> None:
        source = bytes(self.pointer(instr.src).view(instr.src_offset, instr.size))
        self.pointer(instr.dst).view(instr.dst_offset, instr.size)[:] = source

    def mem_zero(self, instr: MemZero) -> None:
        self.pointer(instr.base).view(instr.offset, instr.size)[:] = bytes(instr.size)

    def call(self, instr: Call) -> None:
        name = instr.helper.removeprefix("bpf_")
        helper = _HELPERS.get(name)
        if helper is None:
            raise InterpreterError(f"helper {instr.helper} is not emulated")
        result = helper(self, [self.value(a) for a in instr.args])
        if instr.dst is not None:
            self.values[instr.dst] = result

    # -- helpers --------------------------------------------------------------------

    def _host_map(self, value: object) -> HostMap:
        if not isinstance(value, HostMap):
            raise InterpreterError(f"helper expects a map, got {value!r}")
        return value

    def _bytes(self, value: object, size: int) -> bytes:
        if not isinstance(value, Pointer):
            raise InterpreterError(f"helper expects a pointer, got {value!r}")
        return bytes(value.view(0, size))

    def h_map_lookup_elem(self, args: list) -> Pointer | int:
        host = self._host_map(args[0])
        found = host.lookup(self._bytes(args[1], host.decl.key_size), self.machine.cpu)
        return 0 if found is None else Pointer(found, 0, f"map {host.decl.name}")

    def h_map_update_elem(self, args: list) -> int:
        host = self._host_map(args[0])
        key = self._bytes(args[1], host.decl.key_size)
        value = self._bytes(args[2], host.decl.value_size)
        return host.update(key, value, args[3] if len(args) > 3 else 0, self.machine.cpu)

    def h_map_delete_elem(self, args: list) -> int:
        host = self._host_map(args[0])
        return host.delete(self._bytes(args[1], host.decl.key_size))

    def h_tail_call(self, args: list) -> int:
        """Jump to the program in the slot, or carry on when it is empty (or after
        MAX_TAIL_CALLS jumps), as bpf_tail_call does."""
        host = self._host_map(args[1])
        index = self.scalar_arg(args[2]) & 0xFFFFFFFF
        slot = host.find(index.to_bytes(4, "little")) if index < host.decl.max_entries else None
        if slot is None or self.tail_calls >= MAX_TAIL_CALLS:
            return -errno.ENOENT
        programs = self.machine.module.programs
        position = int.from_bytes(slot[0][:4], "little") - 1
        if not 0 <= position < len(programs):
            raise InterpreterError(f"program array {host.decl.name} holds an unknown program")
        self.tail_calls += 1
        raise _TailCall(programs[position])

    def h_ktime_get_ns(self, args: list) -> int:
        return self.machine.clock()

    def h_get_current_pid_tgid(self, args: list) -> int:
        process = self.machine.process
        return (process.tgid << 32) | process.pid

    def h_get_smp_processor_id(self, args: list) -> int:
        return self.machine.cpu

    def h_get_prandom_u32(self, args: list) -> int:
        return self.machine.random.getrandbits(32)

    def h_trace_printk(self, args: list) -> int:
        raw = self._bytes(args[0], self.scalar_arg(args[1]))
        text = raw.split(b"\0", 1)[0].decode(errors="replace")
        values = iter(args[2:])
        line = re.sub(r"%l{0,2}[dui]|%l{0,2}x|%%", lambda m: _printk(m.group(), values), text)
        self.machine.trace.append(line)
        return len(line)

    def scalar_arg(self, value: object) -> int:
        if not isinstance(value, int):
            raise InterpreterError(f"helper expects a number, got {value!r}")
        return value

    def h_ringbuf_output(self, args: list) -> int:
        host = self._host_map(args[0])
        return host.output(self._bytes(args[1], self.scalar_arg(args[2])))

    def h_ringbuf_reserve(self, args: list) -> Pointer | int:
        host = self._host_map(args[0])
        size = self.scalar_arg(args[1])
        if host.output(bytes(size)) != 0:
            return 0
        host.records.pop()  # only room was checked; submit appends
        host.pending += ring_space(size)
        memory = bytearray(size)
        self.reserved[id(memory)] = (host, memory)
        return Pointer(memory, 0, f"a reservation in {host.decl.name}")

    def _release(self, args: list, keep: bool) -> int:
        pointer = args[0]
        if not isinstance(pointer, Pointer) or id(pointer.memory) not in self.reserved:
            raise InterpreterError("ring buffer submit/discard of a pointer it did not reserve")
        host, memory = self.reserved.pop(id(pointer.memory))
        host.pending -= ring_space(len(memory))
        if keep:
            host.records.append(bytes(memory))
        else:
            host.discarded += ring_space(len(memory))
        return 0

    def h_ringbuf_submit(self, args: list) -> int:
        return self._release(args, keep=True)

    def h_ringbuf_discard(self, args: list) -> int:
        return self._release(args, keep=False)

    def h_perf_event_output(self, args: list) -> int:
        host = self._host_map(args[1])
        index = self.scalar_arg(args[2]) & BPF_F_CURRENT_CPU
        cpu = self.machine.cpu if index == BPF_F_CURRENT_CPU else index
        if cpu >= host.cpus:
            return -errno.E2BIG
        return host.perf_output(self._bytes(args[3], self.scalar_arg(args[4])), cpu)

    # -- spin locks: the verifier allows one at a time, released before exit ------------

    def _lock_key(self, pointer: object) -> tuple[int, int]:
        if not isinstance(pointer, Pointer):
            raise InterpreterError(f"spin lock helper given {pointer!r}, not a map value")
        return id(pointer.memory), pointer.offset

    def h_spin_lock(self, args: list) -> int:
        if self.locks:
            raise InterpreterError("a second spin lock is taken while one is held")
        self.locks.append(self._lock_key(args[0]))
        return 0

    def h_spin_unlock(self, args: list) -> int:
        if self.locks != [self._lock_key(args[0])]:
            raise InterpreterError("bpf_spin_unlock of a lock that is not held")
        self.locks.clear()
        return 0

    # -- the current task and memory ------------------------------------------------------

    def _view(self, pointer: object, size: int) -> memoryview:
        if not isinstance(pointer, Pointer):
            raise InterpreterError(f"helper expects a pointer, got {pointer!r}")
        return pointer.view(0, size)

    def _read(self, address: object, size: int, user: bool) -> bytes | int:
        """``size`` bytes at ``address`` as the probe-read helpers see them, or
        their negative errno. Pointers the run holds (the context, the frame)
        are kernel memory."""
        if isinstance(address, Pointer):
            start = address.offset
            if user or start < 0 or start + size > len(address.memory):
                return -errno.EFAULT
            return bytes(address.memory[start : start + size])
        where = to_u64(self.scalar_arg(address))
        if user and where + size > USER_SPACE_END:
            return -errno.EFAULT
        if not user and where < KERNEL_SPACE_START:
            return -errno.ERANGE  # copy_from_kernel_nofault refuses user addresses
        data = self.machine.memory.read(where, size)
        return -errno.EFAULT if data is None else data

    def _readable(self, address: object, user: bool) -> int | None:
        """How many bytes from ``address`` on can be read (None: not this space)."""
        if isinstance(address, Pointer):
            return None if user else max(len(address.memory) - max(address.offset, 0), 0)
        where = to_u64(self.scalar_arg(address))
        in_space = where < USER_SPACE_END if user else where >= KERNEL_SPACE_START
        return self.machine.memory.readable(where) if in_space else None

    def _probe_read(self, args: list, user: bool) -> int:
        size = self.scalar_arg(args[1])
        view = self._view(args[0], size)
        data = self._read(args[2], size, user)
        if isinstance(data, int):
            view[:] = bytes(size)  # the helpers clear the buffer when they fail
            return data
        view[:] = data
        return 0

    def _probe_read_str(self, args: list, user: bool) -> int:
        """strncpy_from_{user,kernel}_nofault: the string and its NUL, cut to the
        buffer (still NUL-terminated); the count copied, or an errno."""
        size = self.scalar_arg(args[1])
        view = self._view(args[0], size)
        if size == 0:
            return 0
        readable = self._readable(args[2], user)
        if readable is None:
            view[:] = bytes(size)
            return -errno.EFAULT if user else -errno.ERANGE
        chunk = self._read(args[2], min(size, readable), user) if readable else b""
        assert not isinstance(chunk, int)
        end = chunk.find(b"\0")
        if end < 0 and len(chunk) < size:  # ran into unmapped memory first
            view[:] = bytes(size)
            return -errno.EFAULT
        copied = chunk[: end + 1] if end >= 0 else chunk[: size - 1] + b"\0"
        view[: len(copied)] = copied
        return len(copied)

    def h_probe_read_kernel(self, args: list) -> int:
        return self._probe_read(args, user=False)

    def h_probe_read_user(self, args: list) -> int:
        return self._probe_read(args, user=True)

    def h_probe_read_kernel_str(self, args: list) -> int:
        return self._probe_read_str(args, user=False)

    def h_probe_read_user_str(self, args: list) -> int:
        return self._probe_read_str(args, user=True)

    def h_get_current_comm(self, args: list) -> int:
        size = self.scalar_arg(args[1])
        name = self.machine.process.comm[: TASK_COMM_LEN - 1].split(b"\0", 1)[0]
        self._view(args[0], size)[:] = name[: max(size - 1, 0)].ljust(size, b"\0")
        return 0

    def h_get_current_uid_gid(self, args: list) -> int:
        process = self.machine.process
        return ((process.gid & 0xFFFFFFFF) << 32) | (process.uid & 0xFFFFFFFF)

    def h_get_current_task(self, args: list) -> int:
        return self.machine.process.task_address

    def h_get_stack(self, args: list) -> int:
        size, flags = self.scalar_arg(args[2]), self.scalar_arg(args[3])
        view = self._view(args[1], size)
        process = self.machine.process
        stack = process.user_stack if flags & BPF_F_USER_STACK else process.kernel_stack
        frames = stack[flags & BPF_F_SKIP_FIELD_MASK :][: size // 8]
        raw = b"".join(to_u64(ip).to_bytes(8, "little") for ip in frames)
        view[:] = raw.ljust(size, b"\0")
        return len(raw) if frames else -errno.EFAULT

    def h_get_stackid(self, args: list) -> int:
        host, flags = self._host_map(args[1]), self.scalar_arg(args[2])
        process = self.machine.process
        stack = process.user_stack if flags & BPF_F_USER_STACK else process.kernel_stack
        return host.stack_id(stack, flags)

    # -- packets ----------------------------------------------------------------------------

    def h_skb_load_bytes(self, args: list) -> int:
        offset, size = to_u64(self.scalar_arg(args[1])), self.scalar_arg(args[3])
        view = self._view(args[2], size)
        if offset > 0x7FFFFFFF or offset + size > self.data_end - self.data:
            view[:] = bytes(size)
            return -errno.EFAULT
        start = self.data + offset
        view[:] = self.buffer[start : start + size]
        return 0

    def h_skb_store_bytes(self, args: list) -> int:
        offset, size = to_u64(self.scalar_arg(args[1])), self.scalar_arg(args[3])
        if self.scalar_arg(args[4]) & ~3:  # BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH
            return -errno.EINVAL
        if offset > 0x7FFFFFFF or offset + size > self.data_end - self.data:
            return -errno.EFAULT
        start = self.data + offset
        self.buffer[start : start + size] = self._bytes(args[2], size)
        return 0

    def h_xdp_adjust_head(self, args: list) -> int:
        data = self.data + to_s32(self.scalar_arg(args[1]))
        if data < XDP_FRAME_HEADER or data > self.data_end - ETH_HLEN:
            return -errno.EINVAL
        self.data = data
        return 0

    def h_xdp_adjust_tail(self, args: list) -> int:
        delta = to_s32(self.scalar_arg(args[1]))
        end = self.data_end + delta
        if end > len(self.buffer) - XDP_TAILROOM or end < self.data + ETH_HLEN:
            return -errno.EINVAL
        if delta > 0:  # grown bytes are cleared
            self.buffer[self.data_end : end] = bytes(delta)
        self.data_end = end
        return 0

    def h_redirect(self, args: list) -> int:
        flags = self.scalar_arg(args[1])
        if self.program.kind == "xdp":
            return XDP_REDIRECT if flags == 0 else 0  # XDP_ABORTED
        return TC_ACT_SHOT if flags & ~1 else TC_ACT_REDIRECT  # only BPF_F_INGRESS

    def h_redirect_map(self, args: list) -> int:
        host = self._host_map(args[0])
        flags = self.scalar_arg(args[2])
        if flags & ~(XDP_ACTION_MASK | 1 << 3 | 1 << 4):  # BROADCAST, EXCLUDE_INGRESS
            return 0  # XDP_ABORTED
        key = (self.scalar_arg(args[1]) & 0xFFFFFFFF).to_bytes(4, "little")
        return XDP_REDIRECT if host.find(key) is not None else flags & XDP_ACTION_MASK

    def h_csum_diff(self, args: list) -> int:
        """The sum of ``new`` minus that of ``old`` plus ``seed``, folded to 16 bits
        (not inverted), as every architecture's bpf_csum_diff returns it."""
        from_size, to_size = self.scalar_arg(args[1]), self.scalar_arg(args[3])
        if (from_size | to_size) & 3 or from_size + to_size > 512:
            return -errno.EINVAL
        total = self.scalar_arg(args[4]) & 0xFFFFFFFF
        if to_size:
            total = csum_partial(self._bytes(args[2], to_size), total)
        if from_size and to_size:
            old = csum_partial(self._bytes(args[0], from_size), 0)
            total = csum_add(total, ~old & 0xFFFFFFFF)
        elif from_size:
            total = ~csum_partial(self._bytes(args[0], from_size), ~total) & 0xFFFFFFFF
        folded = (total & 0xFFFF) + (total >> 16)
        return (folded & 0xFFFF) + (folded >> 16)

    def _csum_field(self, args: list) -> memoryview | int:
        offset = to_u64(self.scalar_arg(args[1]))
        if offset > 0xFFFF or offset & 1 or offset + 2 > self.data_end - self.data:
            return -errno.EFAULT
        start = self.data + offset
        return memoryview(self.buffer)[start : start + 2]

    def h_l3_csum_replace(self, args: list) -> int:
        field = self._csum_field(args)
        if isinstance(field, int):
            return field
        old, new, size = (self.scalar_arg(a) for a in args[2:5])
        checksum = int.from_bytes(field, "little")
        if size == 2:
            checksum = ~csum16_add(csum16_add(~checksum & 0xFFFF, ~old & 0xFFFF), new & 0xFFFF)
        elif size == 4:
            checksum = csum_replace4(checksum, old, new)
        elif size == 0 and old == 0:
            checksum = csum_fold(csum_add(new & 0xFFFFFFFF, ~checksum & 0xFFFFFFFF))
        else:
            return -errno.EINVAL
        field[:] = (checksum & 0xFFFF).to_bytes(2, "little")
        return 0

    def h_l4_csum_replace(self, args: list) -> int:
        field = self._csum_field(args)
        if isinstance(field, int):
            return field
        old, new, flags = (self.scalar_arg(a) for a in args[2:5])
        checksum = int.from_bytes(field, "little")
        size = flags & 0xF
        if size == 2:  # test runs' skbs carry no checksum offload: a plain replace
            checksum = csum_replace4(checksum, old & 0xFFFF, new & 0xFFFF)
        elif size == 4:
            checksum = csum_replace4(checksum, old, new)
        elif size == 0:
            checksum = csum_fold(csum_add(new & 0xFFFFFFFF, ~checksum & 0xFFFFFFFF))
        else:
            return -errno.EINVAL
        field[:] = checksum.to_bytes(2, "little")
        return 0


# -- checksums: the kernel's one's complement arithmetic (x86-64) ------------------------


def to_s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value


def csum_partial(data: bytes, seed: int) -> int:
    """csum_partial: a 64-bit end-around-carry sum of little-endian words (the
    last zero-padded), folded to 32 bits."""
    total = seed & 0xFFFFFFFF
    padded = data + bytes(-len(data) % 8)
    for start in range(0, len(padded), 8):
        total += int.from_bytes(padded[start : start + 8], "little")
        total = (total & MASK64) + (total >> 64)
    return csum_add(total >> 32, total & 0xFFFFFFFF)


def csum_add(a: int, b: int) -> int:
    total = a + b
    return (total & 0xFFFFFFFF) + (total >> 32)


def csum16_add(a: int, b: int) -> int:
    total = (a + b) & 0xFFFF
    return (total + (total < b)) & 0xFFFF


def csum_fold(value: int) -> int:
    value = (value & 0xFFFF) + (value >> 16)
    value = (value & 0xFFFF) + (value >> 16)
    return ~value & 0xFFFF


def csum_replace4(checksum: int, old: int, new: int) -> int:
    unfolded = ~checksum & 0xFFFFFFFF
    return csum_fold(csum_add(csum_add(unfolded, ~old & 0xFFFFFFFF), new & 0xFFFFFFFF))


# -- what a test run puts in the context, and gives back ------------------------------------


def _put32(buffer: bytearray, offset: int, value: int) -> None:
    buffer[offset : offset + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")


def _get32(buffer: bytes | bytearray, offset: int) -> int:
    return int.from_bytes(buffer[offset : offset + 4], "little")


def _fill_skb_context(ctx: bytearray, frame: bytes, length: int) -> None:
    """The __sk_buff fields the kernel derives from a test run's frame on the
    loopback device (eth_type_trans); mark, priority and ingress_ifindex come
    from the context given."""
    if len(ctx) < CONTEXT_SIZES["tc"]:
        ctx.extend(bytes(CONTEXT_SIZES["tc"] - len(ctx)))
    destination, proto = frame[0:6], int.from_bytes(frame[12:14], "big")
    if destination == bytes(6):  # the loopback device's address
        pkt_type = PACKET_HOST
    elif destination[0] & 1:  # its broadcast address is zeros too: ff:ff:... is multicast
        pkt_type = PACKET_MULTICAST
    else:
        pkt_type = PACKET_OTHERHOST
    if proto < ETH_P_802_3_MIN:
        proto = ETH_P_802_3 if frame[14:16] == b"\xff\xff" else ETH_P_802_2
    _put32(ctx, SKB_LEN, length)
    _put32(ctx, SKB_PKT_TYPE, pkt_type)
    _put32(ctx, SKB_PROTOCOL, int.from_bytes(proto.to_bytes(2, "big"), "little"))
    if not _get32(ctx, SKB_IFINDEX):
        _put32(ctx, SKB_IFINDEX, LOOPBACK_IFINDEX)
    if not _get32(ctx, SKB_WIRE_LEN):
        _put32(ctx, SKB_WIRE_LEN, length)


def _context_out(kind: str, given: bytes, ctx: bytearray, length: int) -> bytes:
    """The context a test run hands back: the one given, with the fields the
    kernel copies back from its skb or xdp_buff."""
    out = bytearray(given)
    if kind in SKB_KINDS:
        for offset, size in ((SKB_MARK, 4), (SKB_PRIORITY, 4), (SKB_INGRESS_IFINDEX, 4),
                             (SKB_IFINDEX, 4), (SKB_CB, SKB_CB_SIZE), (SKB_TSTAMP, 8),
                             (SKB_WIRE_LEN, 4)):
            if offset + size <= len(out):
                out[offset : offset + size] = ctx[offset : offset + size]
    elif kind == "xdp" and len(out) >= XDP_MD_DATA_END + 4:
        _put32(out, XDP_MD_DATA, 0)
        _put32(out, XDP_MD_DATA_END, length)
    return bytes(out)


def _printk(spec: str, values) -> str:
    if spec == "%%":
        return "%"
    value = next(values, 0)
    if spec.endswith("x"):
        return format(to_u64(value), "x")
    if spec.endswith("u"):
        return str(to_u64(value))
    return str(to_s64(value))


_HANDLERS: dict[type, Callable[[_Run, Instr], None]] = {
    AssignInstr: _Run.assign,
    BinOp: _Run.binop,
    UnOp: _Run.unop,
    Cast: _Run.cast,
    Compare: _Run.compare,
    Load: _Run.load,
    Store: _Run.store,
    AtomicAdd: _Run.atomic_add,
    FrameAddr: _Run.frame_addr,
    ContextPtr: _Run.context_ptr,
    GlobalAddr: _Run.global_addr,
    MapRef: _Run.map_ref,
    PacketLen: _Run.packet_len,
    MemCopy: _Run.mem_copy,
    MemZero: _Run.mem_zero,
    Call: _Run.call,
}

_HELPERS: dict[str, Callable[[_Run, list], object]] = {
    name.removeprefix("h_"): method
    for name, method in vars(_Run).items()
    if name.startswith("h_")
}
