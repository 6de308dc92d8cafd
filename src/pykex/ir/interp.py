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
from collections.abc import Callable
from dataclasses import dataclass, field

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

# Context sizes the kernel accepts for test runs of the packet program kinds.
CONTEXT_SIZES = {"xdp": 24, "tc": 192, "socket_filter": 192, "cgroup_skb": 192}


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


PER_CPU_KINDS = {"PERCPU_ARRAY", "PERCPU_HASH", "LRU_PERCPU_HASH"}
ARRAY_KINDS = {"ARRAY", "PERCPU_ARRAY"}
HASH_KINDS = {"HASH", "PERCPU_HASH", "LRU_HASH", "LRU_PERCPU_HASH"}
BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2


class HostMap:
    """A map emulated in Python. Arrays are zero-filled; per-CPU kinds keep
    one value per CPU; ring buffers collect records in :attr:`records`."""

    def __init__(self, decl: MapDecl, cpus: int) -> None:
        self.decl = decl
        self.cpus = cpus
        self.per_cpu = decl.kind in PER_CPU_KINDS
        self.records: list[bytes] = []
        self.entries: dict[bytes, list[bytearray]] = {}
        if decl.kind in ARRAY_KINDS:
            for index in range(decl.max_entries):
                self.entries[index.to_bytes(4, "little")] = self._fresh()
            if decl.initial is not None:
                for value in self.entries[bytes(4)]:
                    value[: len(decl.initial)] = decl.initial
        elif decl.kind not in HASH_KINDS and decl.kind != "RINGBUF":
            raise InterpreterError(f"map kind {decl.kind} is not emulated")

    def _fresh(self) -> list[bytearray]:
        copies = self.cpus if self.per_cpu else 1
        return [bytearray(self.decl.value_size) for _ in range(copies)]

    def _slot(self, values: list[bytearray], cpu: int) -> bytearray:
        return values[cpu if self.per_cpu else 0]

    def lookup(self, key: bytes, cpu: int) -> bytearray | None:
        values = self.entries.get(bytes(key))
        return None if values is None else self._slot(values, cpu)

    def update(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        key = bytes(key)
        present = key in self.entries
        if self.decl.kind in ARRAY_KINDS:
            if not present:
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
        if not present:
            self.entries[key] = self._fresh()
        self._slot(self.entries[key], cpu)[:] = value
        return 0

    def delete(self, key: bytes) -> int:
        if self.decl.kind in ARRAY_KINDS:
            return -errno.EINVAL
        return 0 if self.entries.pop(bytes(key), None) is not None else -errno.ENOENT

    def output(self, record: bytes) -> int:
        used = sum((len(r) + 8 + 7) & ~7 for r in self.records)
        if used + ((len(record) + 8 + 7) & ~7) > self.decl.max_entries:
            return -errno.EAGAIN
        self.records.append(bytes(record))
        return 0


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
    """``retval`` as BPF_PROG_TEST_RUN reports it (the low 32 bits of r0)."""

    retval: int
    exception: RaisedException | None
    packet: bytes
    steps: int


class Interpreter:
    """Runs the programs of one module against emulated maps.

    ``cpu`` is the CPU the runs happen on (per-CPU maps and frames),
    ``loop_budget`` the number of loop back edges one run may take before
    ``may_goto`` gives up, ``seed`` seeds ``bpf_get_prandom_u32``.
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
    ) -> None:
        self.module = module
        self.cpus = cpus if cpus is not None else max(os.cpu_count() or 1, cpu + 1)
        self.cpu = cpu
        self.loop_budget = loop_budget
        self.random = random.Random(seed)
        self.clock = clock
        self.maps = {decl.name: HostMap(decl, self.cpus) for decl in module.maps}
        self.frames: dict[tuple[str, int], bytearray] = {}
        self.trace: list[str] = []  # bpf_trace_printk output
        self.exceptions: list[RaisedException] = []
        self._reserved: dict[int, tuple[HostMap, bytearray]] = {}

    def program(self, name: str) -> ProgramIR:
        for program in self.module.programs:
            if program.name == name:
                return program
        raise KeyError(f"module {self.module.file} has no program {name!r}")

    def frame(self, program: ProgramIR) -> bytearray:
        key = (program.name, self.cpu)
        if key not in self.frames:
            size = max((program.function.frame_size + 7) & ~7, 8)
            self.frames[key] = bytearray(size)
        return self.frames[key]

    def run(
        self, name: str, packet: bytes | bytearray = b"", ctx: bytes | bytearray | None = None
    ) -> RunResult:
        program = self.program(name)
        if ctx is None:
            ctx = bytes(CONTEXT_SIZES.get(program.kind, 64))
        run = _Run(self, program, bytearray(packet), bytearray(ctx))
        retval, exception = run.execute()
        if exception is not None:
            self.exceptions.append(exception)
        return RunResult(retval & 0xFFFFFFFF, exception, bytes(run.packet), run.steps)


class _Run:
    def __init__(
        self, machine: Interpreter, program: ProgramIR, packet: bytearray, ctx: bytearray
    ) -> None:
        self.machine = machine
        self.program = program
        self.function: Function = program.function
        self.packet = packet
        self.ctx = ctx
        self.frame = machine.frame(program)
        self.values: dict[Temp, int | Pointer | HostMap] = {}
        self.budget = machine.loop_budget
        self.steps = 0
        self.blocks = {b.label: b for b in self.function.blocks}

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
            outcome = self.run_block(block)
            if isinstance(outcome, str):
                block = self.blocks[outcome]
                continue
            return outcome

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
                return self.scalar(instr.value), None
            if isinstance(instr, Raise):
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
        if end > MAX_PACKET_OFFSET or end > len(self.packet):
            return instr.fail
        self.values[instr.dst] = Pointer(self.packet, offset, "the packet")
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
        self.values[instr.dst] = len(self.packet)

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

    def h_ktime_get_ns(self, args: list) -> int:
        return self.machine.clock()

    def h_get_current_pid_tgid(self, args: list) -> int:
        return (os.getpid() << 32) | threading.get_native_id()

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
        memory = bytearray(size)
        self.machine._reserved[id(memory)] = (host, memory)
        return Pointer(memory, 0, f"a reservation in {host.decl.name}")

    def _release(self, args: list, keep: bool) -> int:
        pointer = args[0]
        if not isinstance(pointer, Pointer) or id(pointer.memory) not in self.machine._reserved:
            raise InterpreterError("ring buffer submit/discard of a pointer it did not reserve")
        host, memory = self.machine._reserved.pop(id(pointer.memory))
        if keep:
            host.records.append(bytes(memory))
        return 0

    def h_ringbuf_submit(self, args: list) -> int:
        return self._release(args, keep=True)

    def h_ringbuf_discard(self, args: list) -> int:
        return self._release(args, keep=False)


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
