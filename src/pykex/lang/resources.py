"""Kernel resources held by ``with`` blocks, released on every way out.

Rex's RAII, decided at compile time: functions are inlined, so at every
point of a program the front end knows which resources are held (spin locks
taken with ``with v.lock:``, ring buffer records reserved with
``with rb.reserve(T) as r:``), in order of acquisition. Every exit releases
what it leaves, newest first:

* the normal end of the block unlocks, or submits the record;
* ``return``, ``break`` and ``continue`` release what they leave behind (as
  leaving the block normally: records are submitted);
* every raise site (failed checks, ``raise``, ``assert``, an exhausted loop)
  releases everything before the exception record is written, and a
  reservation is discarded, never sent half-filled.

The kernel's rules under a lock (no helper calls, one lock at a time) are
checked here as language rules.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykex.ir.nodes import (
    U32,
    U64,
    AtomicAdd,
    Block,
    Call,
    GlobalAddr,
    Instr,
    Load,
    Loc,
    MapRef,
    MemZero,
    Raise,
    Return,
    Store,
    Temp,
    Value,
)
from pykex.lang.diagnostics import SourceError
from pykex.lang.module import lock_offset
from pykex.lang.types import LockT, MapT, RefT, StructT, TypeT
from pykex.lang.values import Local, Place, join

if TYPE_CHECKING:
    from pykex.lang.lower import FunctionLowering

# Runtime globals the front end adds to a module (single-element array maps,
# reached without helper calls, so they work under a lock too).
DROPS_MAP = ".data.drops"  # a u64 per ring buffer / perf array: records that found it full
DISABLED_MAP = ".data.disabled"  # a u32 per crash_stop program: non-zero once it raised

# Helpers allowed while a spin lock is held (the kernel's rule).
_UNDER_LOCK = frozenset({"bpf_spin_unlock"})


@dataclass(frozen=True)
class Held:
    """One resource a ``with`` block holds: ``pointer`` is the lock's address
    or the reserved record."""

    kind: str  # "lock" or "reservation"
    pointer: Temp
    node: ast.AST

    def release(self, keep: bool = False) -> Call:
        """The call that gives it back (``keep``: submit the record rather than discard)."""
        if self.kind == "lock":
            return Call(None, "bpf_spin_unlock", [self.pointer])
        helper = "bpf_ringbuf_submit" if keep else "bpf_ringbuf_discard"
        return Call(None, helper, [self.pointer, 0])


class ResourcesMixin:
    """The ``with`` statement and what exits owe to it (mixed into FunctionLowering)."""

    held: list[Held]

    # -- what exits release ------------------------------------------------------------

    def lock_held(self: FunctionLowering) -> Held | None:
        return next((h for h in self.held if h.kind == "lock"), None)

    def check_call_allowed(self: FunctionLowering, instr: Instr) -> None:
        """Refuse a helper call under a spin lock (the verifier's rule, as ours)."""
        if not isinstance(instr, Call) or instr.helper in _UNDER_LOCK:
            return
        lock = self.lock_held()
        if lock is not None:
            raise SourceError(self.node, f"this calls the kernel helper {instr.helper}, which "
                              "is not allowed while a spin lock is held",
                              f"move it out of the `with` block of line "
                              f"{getattr(lock.node, 'lineno', '?')} (map lookups, print, "
                              "ktime_ns... are helper calls)")

    def releases(self: FunctionLowering, down_to: int = 0, keep: bool = False) -> list[Instr]:
        """Calls releasing every resource acquired since depth ``down_to``, newest
        first; ``keep`` submits reserved records (a normal exit) instead of
        discarding them (an exception)."""
        return [held.release(keep) for held in reversed(self.held[down_to:])]

    def emit_releases(self: FunctionLowering, down_to: int = 0) -> None:
        """Leave the blocks above depth ``down_to`` normally (return, break, continue)."""
        for instr in self.releases(down_to, keep=True):
            self.emit(instr, checked=False)

    def raise_instrs(self: FunctionLowering, kind: str, message: str, args: list[Value],
                     loc: Loc) -> list[Instr]:
        """What a raise site runs: release everything, mark a crash-stop program
        disabled, then raise."""
        instrs = self.releases(0)
        flag = self.crash_flag()
        if flag is not None:
            address = self.temp("disabled", pointer=True)
            instrs += [GlobalAddr(address, DISABLED_MAP, flag), Store(address, 0, 1, U32)]
        instrs.append(Raise(kind, message, args))
        for instr in instrs:
            instr.loc = loc
        return instrs

    # -- crash stop ------------------------------------------------------------------------

    def crash_flag(self: FunctionLowering) -> int | None:
        """Offset of this program's disabled flag, when it was declared crash_stop."""
        program = self.program
        if program is None or not program.attach.get("crash_stop"):
            return None
        return self.shared.flag_offset(self.fn.name)

    def crash_stop_entry(self: FunctionLowering, on_error: int) -> None:
        """A disabled program returns ``on_error`` before doing anything."""
        flag = self.crash_flag()
        if flag is None:
            return
        address, value = self.temp("disabled", pointer=True), self.temp("disabled")
        self.emit(GlobalAddr(address, DISABLED_MAP, flag))
        self.emit(Load(value, address, 0, U32))
        stopped, running = self.label("disabled"), self.label("enabled")
        self.end_branch("ne", value, 0, False, stopped, running)
        self.cold.append(Block(stopped, [Return(on_error, loc=self.loc())]))
        self.start(running)

    # -- drops -----------------------------------------------------------------------------

    def count_drop(self: FunctionLowering, ring: str) -> None:
        """Add one to the drop counter of ring buffer or perf array ``ring``."""
        address = self.temp("drops", pointer=True)
        self.emit(GlobalAddr(address, DROPS_MAP, self.shared.drop_offset(ring)))
        self.emit(AtomicAdd(address, 0, 1, U64))

    # -- the with statement ------------------------------------------------------------------

    def stmt_With(self: FunctionLowering, node: ast.With) -> None:
        self.with_items(list(node.items), node)

    def with_items(self: FunctionLowering, items: list[ast.withitem], node: ast.With) -> None:
        if not items:
            self.body(node.body)
            return
        item, rest = items[0], items[1:]
        self.node = item.context_expr
        expr = item.context_expr
        if (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
                and expr.func.attr == "reserve"):
            self.with_reservation(expr, item, rest, node)
        elif isinstance(expr, ast.Attribute):
            self.with_lock(expr, item, rest, node)
        else:
            raise SourceError(expr, "`with` works on ring buffer reservations and spin locks",
                              "write `with rb.reserve(Event) as e:` or `with value.lock:`")

    def with_reservation(self: FunctionLowering, call: ast.Call, item: ast.withitem,
                         rest: list[ast.withitem], node: ast.With) -> None:
        assert isinstance(call.func, ast.Attribute)
        ring = self.expr(call.func.value)
        if not isinstance(ring.type, MapT) or ring.type.kind != "RingBuffer":
            raise SourceError(call.func, f"reserve() belongs to RingBuffer maps, not "
                              f"{ring.type}")
        if len(call.args) != 1 or call.keywords:
            raise SourceError(call, "expected rb.reserve(Type)")
        kind = self.expr(call.args[0])
        if not isinstance(kind.type, TypeT) or not isinstance(kind.type.target, StructT):
            raise SourceError(call.args[0], "reserve() takes the Struct the record is made of",
                              "e.g. with events.reserve(Event) as e:")
        record = kind.type.target
        target = item.optional_vars
        if not isinstance(target, ast.Name):
            raise SourceError(item.optional_vars or call, "name the reserved record",
                              f"with {ast.unparse(call)} as record:")
        name = target.id
        self.check_binding(target)
        mt = ring.type
        self.shared.record_sent(mt.name, record)
        m = self.temp("map", pointer=True)
        self.emit(MapRef(m, mt.name))
        pointer = self.temp(name, pointer=True)
        self.emit(Call(pointer, "bpf_ringbuf_reserve", [m, record.size, 0]))
        reserved, full, after = self.label("reserved"), self.label("ring_full"), self.label(
            "with_end")
        skipped = self.scope.state
        self.end_branch("ne", pointer, 0, False, reserved, full)
        # A full ring drops the record, counted, and skips the block.
        self.start(full)
        self.count_drop(mt.name)
        self.jump(after)
        self.start(reserved)
        self.scope.state = skipped
        # Reserved memory holds whatever the ring held before: start from zeros.
        self.emit(MemZero(pointer, 0, record.size))
        self.scope.expired.discard(name)
        self.scope.locals[name] = Local(RefT(record, mt.name, reserved=True), temp=pointer)
        assert self.scope.state is not None
        self.scope.state = self.scope.state.assign(name, True)
        self.held.append(Held("reservation", pointer, call))
        try:
            self.with_items(rest, node)
        finally:
            self.held.pop()
        finished = self.scope.state
        if self.block is not None:
            self.emit(Held("reservation", pointer, call).release(keep=True), checked=False)
            self.jump(after)
        self.scope.expired.add(name)
        state = join(finished, skipped)
        if state is not None:
            self.start(after)
        self.scope.state = state

    def with_lock(self: FunctionLowering, expr: ast.Attribute, item: ast.withitem,
                  rest: list[ast.withitem], node: ast.With) -> None:
        if item.optional_vars is not None:
            raise SourceError(item.optional_vars, "a lock binds no name",
                              f"write `with {ast.unparse(expr)}:`")
        base = self.expr(expr.value)
        struct = base.type.target if isinstance(base.type, RefT) else base.type
        found = struct.field(expr.attr) if isinstance(struct, StructT) else None
        if found is None or not isinstance(found[0], LockT):
            raise SourceError(expr, f"`with` needs a SpinLock field; {ast.unparse(expr)} is "
                              "not one", "declare `lock: SpinLock` in the Struct of a map value")
        if isinstance(base.type, RefT) and base.type.optional:
            name = str(base.extra.get("name", ast.unparse(expr.value)))
            raise SourceError(expr.value, f"{name} may be None here",
                              f"test it first: `if {name} is not None:`")
        if isinstance(base.type, RefT) and not base.type.reserved:
            assert isinstance(base.value, Temp)
            place = Place("ptr", 0, base.value, base.type.map)
        elif base.place is not None and base.place.kind == "ptr" and base.place.map:
            place = base.place  # a map value a function was given
        else:
            raise SourceError(expr.value, "a SpinLock works only inside a map value",
                              "look the value up first: v = m[key]; with v.lock: ...")
        lock = self.lock_held()
        if lock is not None:
            raise SourceError(expr, "only one spin lock can be held at a time",
                              f"the lock of line {getattr(lock.node, 'lineno', '?')} is "
                              "still held")
        offset = lock_offset(struct)
        assert offset is not None
        pointer = self.pointer_to(place.at(offset))
        self.emit(Call(None, "bpf_spin_lock", [pointer]))
        held = Held("lock", pointer, expr)
        self.held.append(held)
        try:
            self.with_items(rest, node)
        finally:
            self.held.pop()
        if self.block is not None:
            self.emit(held.release(), checked=False)

    def check_binding(self: FunctionLowering, target: ast.Name) -> None:
        """``as name`` binds a new name (or one a finished with block used)."""
        name = target.id
        if self.module.is_user_name(name) or name in self.module.prelude:
            raise SourceError(target, f"cannot bind module-level {name}",
                              "use another name")
        local = self.scope.locals.get(name)
        if local is not None and name not in self.scope.expired:
            raise SourceError(target, f"{name} already names a {local.type}",
                              "use a new name for the record")

    def expired_use(self: FunctionLowering, node: ast.Name) -> SourceError:
        return SourceError(node, f"the record {node.id} was sent when its `with` block ended",
                           "use it inside the block")
