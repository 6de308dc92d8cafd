"""Register allocation: liveness, then linear scan over the blocks in layout order.

Fixed registers: r6 holds the context, r7 the frame, r0 and r5 are scratch
registers of instruction selection (r0 also takes helper results, r5 the
fifth helper argument). Temps get r1-r4 when no helper call happens while
they are live (calls clobber r0-r5), r8/r9 otherwise, and an 8-byte stack
slot when registers run out. Each temp keeps one location for its whole
lifetime, which is the hull of every position where it is live.

Temps defined exactly once by an address instruction (frame, context, map,
global) take no location at all: instruction selection rematerialises them
from r6/r7 or a 64-bit immediate where they are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pykex.bpf.insn import R1, R2, R3, R4, R8, R9, Register
from pykex.ir.nodes import (
    Block,
    Branch,
    Call,
    ContextPtr,
    FrameAddr,
    Function,
    GlobalAddr,
    Instr,
    Jump,
    LoopBack,
    MapRef,
    PacketPtr,
    Temp,
)

CALLER_SAVED = (R1, R2, R3, R4)
CALLEE_SAVED = (R8, R9)
SLOT_SIZE = 8
REMATERIALISABLE = (FrameAddr, ContextPtr, MapRef, GlobalAddr)


@dataclass(frozen=True)
class StackSlot:
    """An 8-byte spill slot at ``r10 - offset``."""

    offset: int


Location = Register | StackSlot


@dataclass
class Interval:
    temp: Temp
    start: int
    end: int
    crosses_call: bool = False


@dataclass
class Allocation:
    """Where each temp lives; ``remat`` maps address temps to their defining instruction."""

    locations: dict[Temp, Location] = field(default_factory=dict)
    remat: dict[Temp, Instr] = field(default_factory=dict)
    stack_size: int = SLOT_SIZE  # at least one slot: the entry's map key lives there

    def location(self, temp: Temp) -> Location:
        return self.locations[temp]


def _uses(instr: Instr) -> list[Temp]:
    return [v for v in instr.uses() if isinstance(v, Temp)]


def rematerialisable(function: Function) -> dict[Temp, Instr]:
    defs: dict[Temp, list[Instr]] = {}
    for block in function.blocks:
        for instr in block.instrs:
            for temp in instr.defs():
                defs.setdefault(temp, []).append(instr)
    return {
        temp: found[0]
        for temp, found in defs.items()
        if len(found) == 1 and isinstance(found[0], REMATERIALISABLE)
    }


def liveness(function: Function, ignore: set[Temp]) -> dict[str, set[Temp]]:
    """Live-in set of each block (temps in ``ignore`` are left out)."""
    live_in: dict[str, set[Temp]] = {b.label: set() for b in function.blocks}
    changed = True
    while changed:
        changed = False
        for block in reversed(function.blocks):
            live = _live_out(block, live_in)
            for instr in reversed(block.instrs):
                live = _step_back(instr, live, live_in, ignore)
            if live != live_in[block.label]:
                live_in[block.label] = live
                changed = True
    return live_in


def terminator_targets(instr: Instr) -> list[str]:
    if isinstance(instr, Jump):
        return [instr.target]
    if isinstance(instr, Branch):
        return [instr.then, instr.orelse]
    if isinstance(instr, LoopBack):
        return [instr.target, instr.exhausted]
    return []


def _live_out(block: Block, live_in: dict[str, set[Temp]]) -> set[Temp]:
    # A packet check's failure target joins the live set at the check itself.
    live: set[Temp] = set()
    for label in terminator_targets(block.terminator):
        live |= live_in[label]
    return live


def _step_back(
    instr: Instr, live: set[Temp], live_in: dict[str, set[Temp]], ignore: set[Temp]
) -> set[Temp]:
    live = (live - set(instr.defs())) | {t for t in _uses(instr) if t not in ignore}
    if isinstance(instr, PacketPtr):
        live |= live_in[instr.fail]
    return live


def intervals(function: Function, ignore: set[Temp]) -> list[Interval]:
    live_in = liveness(function, ignore)
    found: dict[Temp, Interval] = {}

    def touch(temp: Temp, position: int) -> Interval:
        interval = found.get(temp)
        if interval is None:
            interval = found[temp] = Interval(temp, position, position)
        else:
            interval.start = min(interval.start, position)
            interval.end = max(interval.end, position)
        return interval

    position = 0
    starts = []
    for block in function.blocks:
        starts.append(position)
        position += len(block.instrs)
    for block, first in zip(function.blocks, starts, strict=True):
        live = _live_out(block, live_in)
        for temp in live:
            touch(temp, first + len(block.instrs) - 1)
        for index in range(len(block.instrs) - 1, -1, -1):
            instr = block.instrs[index]
            here = first + index
            defined = set(instr.defs())
            if isinstance(instr, Call):
                for temp in live - defined:
                    touch(temp, here).crosses_call = True
            if isinstance(instr, PacketPtr):
                for temp in live_in[instr.fail]:
                    touch(temp, here)
            for temp in defined:
                if temp not in ignore:
                    touch(temp, here)
            live = _step_back(instr, live, live_in, ignore)
            for temp in live:
                touch(temp, here)
    return sorted(found.values(), key=lambda i: (i.start, i.temp.id))


def allocate(function: Function) -> Allocation:
    remat = rematerialisable(function)
    allocation = Allocation(remat=remat)
    active: list[Interval] = []  # intervals holding a register
    spilled: list[tuple[Interval, StackSlot]] = []
    free_slots: list[StackSlot] = []
    slot_count = 0

    def take_slot() -> StackSlot:
        nonlocal slot_count
        if free_slots:
            return free_slots.pop()
        slot_count += 1
        return StackSlot(slot_count * SLOT_SIZE)

    for current in intervals(function, set(remat)):
        # Operands die at the instruction that defines the next value: the
        # selector reads all operands before it writes a result.
        for old in [i for i in active if i.end <= current.start]:
            active.remove(old)
        for old, slot in [s for s in spilled if s[0].end < current.start]:
            spilled.remove((old, slot))
            free_slots.append(slot)
        candidates = CALLEE_SAVED if current.crosses_call else (*CALLER_SAVED, *CALLEE_SAVED)
        taken = {allocation.locations[i.temp] for i in active}
        free = [r for r in candidates if r not in taken]
        if free:
            allocation.locations[current.temp] = free[0]
            active.append(current)
            continue
        victims = [i for i in active if allocation.locations[i.temp] in candidates]
        victim = max(victims, key=lambda i: i.end)
        if victim.end > current.end:
            allocation.locations[current.temp] = allocation.locations[victim.temp]
            active.remove(victim)
            active.append(current)
            current = victim
        slot = take_slot()
        allocation.locations[current.temp] = slot
        spilled.append((current, slot))
    allocation.stack_size = max(slot_count, 1) * SLOT_SIZE
    return allocation
