"""Register allocation: liveness, then linear scan over the blocks in layout order.

Fixed registers: r6 holds the context, r7 the frame, r0 and r5 are scratch
registers of instruction selection (r0 also takes helper results, r5 the
fifth helper argument). Temps get r1-r4 when no helper call happens while
they are live (calls clobber r0-r5), r8/r9 otherwise, and a spill slot when
registers run out. Each temp keeps one location for its whole lifetime:
the positions where it is live, kept as one range per block. Two temps may
share a register when their ranges do not overlap, so a value read again
only by a cold block at the end of the function (an exception's message)
leaves its register free for the hot code in between. Spill slots are
given per lifetime hull.

Scalars spill into the frame (a map value), pointers onto the stack. The
verifier tracks what the stack holds, dead slots included, and at a loop's
``may_goto`` it wants every initialised slot of the earlier visit to match
in range: a stale scalar spilled in the body (a checked packet offset, a
shift amount) would keep the loop from converging. Map values are opaque to
it, so scalars there cost nothing to verify.

A scalar added to a pointer (an array index, a field offset) is the
exception: the verifier learns its bound at the comparison before the
addition, and a value reloaded from a map value has no bound, so the
addition would be refused. Such offsets never give up their register to
another temp; one that finds no register takes a register from a temp that
is not an offset, and only when every register holds an offset does it
spill, onto the stack, where a reload shares the compared value's bound.

Temps defined exactly once by an address instruction (frame, context, map,
global) take no location at all: instruction selection rematerialises them
from r6/r7 or a 64-bit immediate where they are used.

A temp written only by copies of one other temp takes that temp's register
when nothing else holds it and the source is written once, outside the
copy's lifetime: wherever both live they hold one value, and the copy
costs no instruction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pykex.bpf.insn import R1, R2, R3, R4, R8, R9, Register
from pykex.ir.nodes import (
    Assign,
    BinOp,
    Block,
    Branch,
    Call,
    Cast,
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
    UnOp,
)

CALLER_SAVED = (R1, R2, R3, R4)
CALLEE_SAVED = (R8, R9)
SLOT_SIZE = 8
REMATERIALISABLE = (FrameAddr, ContextPtr, MapRef, GlobalAddr)


@dataclass(frozen=True)
class StackSlot:
    """An 8-byte spill slot for a pointer at ``r10 - offset``."""

    offset: int


@dataclass(frozen=True)
class FrameSlot:
    """An 8-byte spill slot for a scalar at byte ``offset`` of the frame's spill area."""

    offset: int


Location = Register | StackSlot | FrameSlot


@dataclass
class Interval:
    """Where ``temp`` is live: ``ranges`` of positions, within ``start``..``end``."""

    temp: Temp
    start: int
    end: int
    crosses_call: bool = False
    ranges: list[tuple[int, int]] = field(default_factory=list)

    def overlaps(self, other: Interval) -> bool:
        """Whether both are live at once. A range ending where another starts
        does not overlap it: the selector reads operands before it writes."""
        if self.end <= other.start or other.end <= self.start:
            return False
        mine, theirs = self.ranges, other.ranges
        i = j = 0
        while i < len(mine) and j < len(theirs):
            if mine[i][1] <= theirs[j][0]:
                i += 1
            elif theirs[j][1] <= mine[i][0]:
                j += 1
            else:
                return True
        return False


@dataclass
class Allocation:
    """Where each temp lives; ``remat`` maps address temps to their defining instruction."""

    locations: dict[Temp, Location] = field(default_factory=dict)
    remat: dict[Temp, Instr] = field(default_factory=dict)
    stack_size: int = SLOT_SIZE  # at least one slot: the entry's map key lives there
    spill_size: int = 0  # bytes of FrameSlots

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
    segments: dict[Temp, dict[int, list[int]]] = {}  # block index -> [first, last]

    def touch(temp: Temp, position: int, block: int) -> Interval:
        interval = found.get(temp)
        if interval is None:
            interval = found[temp] = Interval(temp, position, position)
        else:
            interval.start = min(interval.start, position)
            interval.end = max(interval.end, position)
        segment = segments.setdefault(temp, {}).setdefault(block, [position, position])
        segment[0] = min(segment[0], position)
        segment[1] = max(segment[1], position)
        return interval

    position = 0
    starts = []
    for block in function.blocks:
        starts.append(position)
        position += len(block.instrs)
    for number, (block, first) in enumerate(zip(function.blocks, starts, strict=True)):
        live = _live_out(block, live_in)
        for temp in live:
            touch(temp, first + len(block.instrs) - 1, number)
        for index in range(len(block.instrs) - 1, -1, -1):
            instr = block.instrs[index]
            here = first + index
            defined = set(instr.defs())
            if isinstance(instr, Call):
                for temp in live - defined:
                    touch(temp, here, number).crosses_call = True
            if isinstance(instr, PacketPtr):
                # The pointer is written before the bounds test that may jump
                # to ``fail``: what ``fail`` reads must not share its place.
                for temp in live_in[instr.fail]:
                    touch(temp, here + 1, number)
            for temp in defined:
                if temp not in ignore:
                    touch(temp, here, number)
            live = _step_back(instr, live, live_in, ignore)
            for temp in live:
                touch(temp, here, number)
    for temp, interval in found.items():
        for first, last in sorted(segments[temp].values()):
            if interval.ranges and interval.ranges[-1][1] + 1 >= first:
                interval.ranges[-1] = (interval.ranges[-1][0], max(last, interval.ranges[-1][1]))
            else:
                interval.ranges.append((first, last))
    return sorted(found.values(), key=lambda i: (i.start, i.temp.id))


def _copy_sources(function: Function) -> dict[Temp, Temp]:
    """Temps written only by copies of one other temp: that temp."""
    sources: dict[Temp, set[Temp | int]] = {}
    for block in function.blocks:
        for instr in block.instrs:
            for temp in instr.defs():
                src = instr.src if isinstance(instr, Assign) else -1
                sources.setdefault(temp, set()).add(src)
    return {
        temp: next(iter(found)) for temp, found in sources.items()
        if len(found) == 1 and isinstance(next(iter(found)), Temp)
    }  # fmt: skip


def _definition_positions(function: Function) -> dict[Temp, list[int]]:
    """Where each temp is written, numbered as :func:`intervals` numbers instructions."""
    found: dict[Temp, list[int]] = {}
    position = 0
    for block in function.blocks:
        for instr in block.instrs:
            for temp in instr.defs():
                found.setdefault(temp, []).append(position)
            position += 1
    return found


def _shared_with_source(
    current: Interval,
    copied_from: dict[Temp, Temp],
    allocation: Allocation,
    holders: dict[Register, list[Interval]],
    defined_at: dict[Temp, list[int]],
    candidates: tuple[Register, ...],
) -> Register | None:
    """The register of the temp ``current`` copies, when the two may share it:
    current is only ever written by copies of it, and it is written once,
    outside current's lifetime, so wherever both live they hold one value."""
    source = copied_from.get(current.temp)
    if source is None:
        return None
    register = allocation.locations.get(source)
    if not isinstance(register, Register) or register not in candidates:
        return None
    conflicting = [i for i in holders[register] if i.overlaps(current)]
    if any(i.temp is not source for i in conflicting):
        return None
    writes = defined_at.get(source, [])
    if len(writes) != 1 or any(lo <= writes[0] <= hi for lo, hi in current.ranges):
        return None
    return register


def pointer_offsets(function: Function) -> set[Temp]:
    """Scalar temps added to (or subtracted from) a pointer, and the scalars
    they are computed from (an index scaled by the element size): the bound
    the verifier needs may have been learnt on any of them."""
    found: set[Temp] = set()
    sources: dict[Temp, list[Temp]] = {}
    for block in function.blocks:
        for instr in block.instrs:
            operands = [v for v in instr.uses() if isinstance(v, Temp) and not v.pointer]
            if isinstance(instr, BinOp) and instr.dst.pointer:
                found.update(operands)
            elif isinstance(instr, Assign | BinOp | Cast | UnOp) and not instr.dst.pointer:
                sources.setdefault(instr.dst, []).extend(operands)
    pending = list(found)
    while pending:
        for source in sources.get(pending.pop(), ()):
            if source not in found:
                found.add(source)
                pending.append(source)
    return found


def allocate(function: Function) -> Allocation:
    remat = rematerialisable(function)
    offsets = pointer_offsets(function)
    allocation = Allocation(remat=remat)
    # Where each slot's last occupant ends, pointer (stack) and scalar (frame) slots apart.
    stack_slots: dict[StackSlot, int] = {}
    frame_slots: dict[FrameSlot, int] = {}

    def take_slot(interval: Interval) -> StackSlot | FrameSlot:
        # A victim spilled late started long ago: its slot must be free over
        # its whole interval, not only from the current position on.
        on_stack = interval.temp.pointer or interval.temp in offsets
        pool: dict = stack_slots if on_stack else frame_slots
        for slot, free_after in pool.items():
            if free_after < interval.start:
                pool[slot] = interval.end
                return slot
        count = len(pool)
        slot = StackSlot((count + 1) * SLOT_SIZE) if on_stack else FrameSlot(count * SLOT_SIZE)
        pool[slot] = interval.end
        return slot

    copied_from = _copy_sources(function)
    defined_at = _definition_positions(function)
    holders: dict[Register, list[Interval]] = {r: [] for r in (*CALLER_SAVED, *CALLEE_SAVED)}
    for current in intervals(function, set(remat)):
        for held in holders.values():
            held[:] = [i for i in held if i.end > current.start]
        candidates = CALLEE_SAVED if current.crosses_call else (*CALLER_SAVED, *CALLEE_SAVED)
        # The register of the temp it copies, if free but for that temp while
        # both hold the same value; else the first free register; else the
        # one whose single conflicting holder lives longest, if longer than
        # current: that holder spills.
        chosen: Register | None = _shared_with_source(
            current, copied_from, allocation, holders, defined_at, candidates
        )
        victim: Interval | None = None
        for register in () if chosen else candidates:
            conflicting = [i for i in holders[register] if i.overlaps(current)]
            if not conflicting:
                chosen, victim = register, None
                break
            if len(conflicting) != 1 or conflicting[0].temp in offsets:
                continue
            # An offset takes a register from any other temp; others only from a
            # temp that lives longer.
            outlives = conflicting[0].end > current.end or current.temp in offsets
            if outlives and (victim is None or conflicting[0].end > victim.end):
                chosen, victim = register, conflicting[0]
        if chosen is None:
            allocation.locations[current.temp] = take_slot(current)
            continue
        if victim is not None:
            holders[chosen].remove(victim)
            allocation.locations[victim.temp] = take_slot(victim)
        allocation.locations[current.temp] = chosen
        holders[chosen].append(current)
    allocation.stack_size = max(len(stack_slots), 1) * SLOT_SIZE
    allocation.spill_size = len(frame_slots) * SLOT_SIZE
    return allocation
