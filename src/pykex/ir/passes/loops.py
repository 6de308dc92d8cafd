"""Loops: finding them, and unrolling small ones so that several iterations
share one ``may_goto``.

A loop is what a ``LoopBack`` closes: its header is the back edge's target,
its blocks those that reach a back edge to the header without passing the
header. The front end gives every loop back edges of its own, so the loops
of a function nest and never share a header.

:func:`unroll_loops` copies the blocks of each innermost small loop
``UNROLL_FACTOR - 1`` times. In every copy but the last, the back edges jump
to the header of the next copy; the last copy's back edges are the only
``LoopBack``: one ``may_goto`` (five instructions and a stack round trip
once the verifier has rewritten it) for ``UNROLL_FACTOR`` iterations. Each
copy keeps the loop's exit test, so the loop runs exactly as many
iterations as before; only the budget is checked less often. Why the
verifier still accepts the loop is in docs/compiler.md ("Unrolled loops").
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..nodes import (
    Assign,
    AtomicAdd,
    BinOp,
    Block,
    Branch,
    Call,
    FrameAddr,
    Function,
    Instr,
    Jump,
    Load,
    Loc,
    LoopBack,
    MemCopy,
    MemZero,
    PacketPtr,
    Scalar,
    Store,
    Temp,
)
from .memory import _frame_offsets, _outside_frame
from .simplify import definitions, eliminate_dead_code

UNROLL_FACTOR = 4
MAX_UNROLLED_BODY = 48  # IR instructions per copy; larger bodies gain little
_LABEL_FIELDS = ("target", "then", "orelse", "exhausted", "fail")


@dataclass
class Loop:
    header: str
    blocks: list[str]  # layout order, the header among them

    def contains(self, label: str) -> bool:
        return label in self.blocks


def predecessors(function: Function) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {b.label: [] for b in function.blocks}
    for block in function.blocks:
        for label in block.successors():
            found[label].append(block.label)
    return found


def find_loops(function: Function) -> list[Loop]:
    """Every loop of ``function``, in the layout order of their headers."""
    before = predecessors(function)
    latches: dict[str, list[str]] = {}
    for block in function.blocks:
        if isinstance(block.terminator, LoopBack):
            latches.setdefault(block.terminator.target, []).append(block.label)
    loops = []
    for block in function.blocks:
        if block.label not in latches:
            continue
        members = {block.label}
        work = list(latches[block.label])
        while work:
            label = work.pop()
            if label not in members:
                members.add(label)
                work.extend(before[label])
        ordered = [b.label for b in function.blocks if b.label in members]
        loops.append(Loop(block.label, ordered))
    return loops


def is_innermost(function: Function, loop: Loop) -> bool:
    """Whether ``loop`` contains no other loop, and its header is entered from
    inside it by its back edges only."""
    by_label = {b.label: b for b in function.blocks}
    for label in loop.blocks:
        block = by_label[label]
        term = block.terminator
        if isinstance(term, LoopBack) and term.target != loop.header:
            return False
        inner_targets = [t for t in block.successors() if t == loop.header]
        back_edges = 1 if isinstance(term, LoopBack) and term.target == loop.header else 0
        if len(inner_targets) != back_edges:
            return False
    return True


def live_in(function: Function) -> dict[str, set[Temp]]:
    """The temps each block may read before writing them (a failed packet
    check enters its target with what is live there)."""
    result: dict[str, set[Temp]] = {b.label: set() for b in function.blocks}
    changed = True
    while changed:
        changed = False
        for block in reversed(function.blocks):
            live: set[Temp] = set()
            for label in terminator_targets(block.terminator):
                live |= result[label]
            for instr in reversed(block.instrs):
                live -= set(instr.defs())
                live |= {v for v in instr.uses() if isinstance(v, Temp)}
                if isinstance(instr, PacketPtr):
                    live |= result[instr.fail]
            if live != result[block.label]:
                result[block.label] = live
                changed = True
    return result


def terminator_targets(instr: Instr) -> list[str]:
    if isinstance(instr, Jump):
        return [instr.target]
    if isinstance(instr, Branch):
        return [instr.then, instr.orelse]
    if isinstance(instr, LoopBack):
        return [instr.target, instr.exhausted]
    return []


def unroll_loops(function: Function) -> bool:
    by_label = {b.label: b for b in function.blocks}
    chosen = [
        loop for loop in find_loops(function)
        if is_innermost(function, loop)
        and sum(len(by_label[label].instrs) for label in loop.blocks) <= MAX_UNROLLED_BODY
    ]  # fmt: skip
    if not chosen:
        return False
    # Innermost loops share no block, and a copy of one reads no temp local
    # to another: what is local to each can be found before any is copied.
    places = _temp_places(function)
    carried = live_in(function)
    for loop in chosen:
        inside = set(loop.blocks)
        local = {t for t, labels in places.items() if labels <= inside} - carried[loop.header]
        _unroll(function, loop, local)
    return True


def _temp_places(function: Function) -> dict[Temp, set[str]]:
    """The blocks that read or write each temp."""
    places: dict[Temp, set[str]] = {}
    for block in function.blocks:
        for instr in block.instrs:
            for temp in (*instr.defs(), *instr.uses()):
                if isinstance(temp, Temp):
                    places.setdefault(temp, set()).add(block.label)
    return places


def _unroll(function: Function, loop: Loop, local: set[Temp]) -> None:
    """Copy ``loop``; ``local`` are the temps each copy gets its own of: those
    only the loop reads or writes, and that no iteration passes to the next."""
    inside = set(loop.blocks)
    by_label = {b.label: b for b in function.blocks}
    taken = {b.label for b in function.blocks}
    copies: list[dict[str, str]] = [{label: label for label in loop.blocks}]
    for number in range(2, UNROLL_FACTOR + 1):
        names = {}
        for label in loop.blocks:
            name = f"{label}_{number}"
            while name in taken:
                name += "_"
            taken.add(name)
            names[label] = name
        copies.append(names)
    originals = {label: list(by_label[label].instrs) for label in loop.blocks}
    new_blocks: list[Block] = []
    for index, names in enumerate(copies):
        following = copies[index + 1] if index + 1 < len(copies) else None
        temps = (
            {t: function.new_temp(t.hint, t.pointer) for t in local} if index else {}
        )
        for label in loop.blocks:
            instrs = [_renamed(i, temps, names, inside) for i in originals[label]]
            term = instrs[-1]
            if isinstance(term, LoopBack) and following is not None:
                # Straight on to the next copy: only the last one checks the budget.
                instrs[-1] = Jump(following[loop.header], loc=term.loc)
            elif isinstance(term, LoopBack):
                instrs[-1] = LoopBack(copies[0][loop.header], term.exhausted, loc=term.loc)
            if index == 0:
                by_label[label].instrs = instrs
            else:
                new_blocks.append(Block(names[label], instrs))
    last = max(i for i, b in enumerate(function.blocks) if b.label in inside)
    function.blocks[last + 1 : last + 1] = new_blocks


def _renamed(
    instr: Instr, temps: dict[Temp, Temp], labels: dict[str, str], inside: set[str]
) -> Instr:
    """A copy of ``instr`` reading and writing ``temps``' replacements and
    jumping to ``labels``' copies of the loop's blocks."""
    out = copy.copy(instr)
    for field in dataclasses.fields(out):
        value = getattr(out, field.name)
        if isinstance(value, Temp):
            setattr(out, field.name, temps.get(value, value))
        elif isinstance(value, list):
            setattr(out, field.name, [temps.get(v, v) if isinstance(v, Temp) else v
                                      for v in value])
        elif field.name in _LABEL_FIELDS and isinstance(value, str) and value in inside:
            setattr(out, field.name, labels[value])
    return out


# -- accumulators in registers ------------------------------------------------------

# Updates whose result spans the whole type whenever their input does.
ACCUMULATE_OPS = ("add", "sub", "xor")
_COMMUTATIVE = ("add", "xor")


@dataclass(frozen=True)
class _Slot:
    offset: int
    ty: Scalar


def carry_accumulators(function: Function) -> bool:
    """Keep each accumulator of an innermost loop in one register across
    iterations, instead of storing it to its frame slot and loading it back.

    An accumulator is a frame slot that the loop writes only as ``slot =
    slot <add|sub|xor> x`` in the slot's own type, each update stored at
    once. The slot is loaded into a register ``v`` on the way into the loop;
    each update becomes ``v = v <op> x`` and still stores ``v`` (so the
    frame is always current and the exits need nothing). Any other reader of
    an updated value loads it from the frame instead of copying ``v``. So
    ``v`` is never copied, compared or used as an offset, and the verifier
    sees the widest value of its type there at every ``may_goto``
    (docs/compiler.md, "Accumulators"). This pass must run last: a later
    pass forwarding a store of ``v`` to a load would copy it."""
    facts = _Facts(function)
    changed = False
    for loop in find_loops(function):
        if not is_innermost(function, loop):
            continue
        for slot in _accumulator_slots(facts, loop):
            if _carry(facts, loop, slot):
                changed = True
    if changed:
        eliminate_dead_code(function)
    return changed


class _Facts:
    """What the pass needs to know about the function, found once. Rewriting
    one accumulator leaves these true for the others (it only adds temps,
    and drops reads and writes of its own), or more cautious than need be."""

    def __init__(self, function: Function) -> None:
        self.function = function
        self.frame = _frame_offsets(function)
        self.elsewhere = _outside_frame(function)
        self.defs = definitions(function)
        self.by_label = {b.label: b for b in function.blocks}
        self.places = _temp_places(function)
        # label -> (predecessor, whether it enters through a failed packet check)
        self.entries: dict[str, list[tuple[str, bool]]] = {b.label: [] for b in function.blocks}
        for block in function.blocks:
            for instr in block.instrs:
                if isinstance(instr, PacketPtr):
                    self.entries[instr.fail].append((block.label, True))
            for label in terminator_targets(block.terminator):
                self.entries[label].append((block.label, False))

    def instrs(self, loop: Loop) -> Iterator[tuple[Block, int, Instr]]:
        for label in loop.blocks:
            block = self.by_label[label]
            for index, instr in enumerate(block.instrs):
                yield block, index, instr

    def frame_pointer(self, loc: Loc | None) -> tuple[Temp, Instr]:
        base = self.function.new_temp("fp", pointer=True)
        self.frame[base] = 0
        return base, FrameAddr(base, 0, loc=loc)


def _accumulator_slots(facts: _Facts, loop: Loop) -> list[_Slot]:
    """Frame slots the loop reads and writes only whole, with one type, and
    that nothing else in the loop may write (no helper gets a pointer that
    may lead into the frame, no store goes through one)."""
    frame, elsewhere = facts.frame, facts.elsewhere
    loads: dict[int, set[Scalar]] = {}
    stores: dict[int, set[int]] = {}
    partial: list[tuple[int, int]] = []  # frame bytes accessed otherwise
    for _, _, instr in facts.instrs(loop):
        if isinstance(instr, Call):
            if any(isinstance(a, Temp) and a.pointer and a not in elsewhere for a in instr.args):
                return []
        elif isinstance(instr, Store | AtomicAdd | MemZero | MemCopy):
            base = instr.dst if isinstance(instr, MemCopy) else instr.base
            if base not in frame:
                if base not in elsewhere:
                    return []
                continue
            start = frame[base] + (instr.dst_offset if isinstance(instr, MemCopy) else instr.offset)
            if isinstance(instr, Store) and not instr.big_endian:
                stores.setdefault(start, set()).add(instr.ty.size)
            else:
                size = instr.ty.size if isinstance(instr, Store | AtomicAdd) else instr.size
                partial.append((start, start + size))
        elif isinstance(instr, Load) and instr.base in frame:
            start = frame[instr.base] + instr.offset
            if instr.big_endian:
                partial.append((start, start + instr.ty.size))
            else:
                loads.setdefault(start, set()).add(instr.ty)
    spans = [(o, o + size) for o, sizes in stores.items() for size in sizes]
    spans += [(o, o + ty.size) for o, types in loads.items() for ty in types]
    slots = []
    for start, sizes in stores.items():
        types = loads.get(start, set())
        if len(types) != 1 or {t.size for t in types} != sizes:
            continue
        ty = next(iter(types))
        end = start + ty.size
        others = [(lo, hi) for lo, hi in spans if (lo, hi) != (start, end)] + partial
        if not any(lo < end and start < hi for lo, hi in others):
            slots.append(_Slot(start, ty))
    return slots


def _carry(facts: _Facts, loop: Loop, slot: _Slot) -> bool:
    frame = facts.frame

    def of_slot(instr: Instr) -> bool:
        return (
            isinstance(instr, Load | Store) and instr.base in frame
            and frame[instr.base] + instr.offset == slot.offset
        )  # fmt: skip

    web, updates = _value_web(facts, loop, slot, of_slot)
    if not updates or not _web_is_private(facts, loop, web):
        return False
    holding = _holding(facts, loop, web, of_slot)
    entries = [(p, fail) for p, fail in facts.entries[loop.header] if p not in loop.blocks]
    if any(fail for _, fail in entries) or not _rewritable(
        facts, loop, web, updates, holding, of_slot
    ):
        return False
    value = facts.function.new_temp("acc")

    def load(dst: Temp, loc: Loc | None) -> list[Instr]:
        base, address = facts.frame_pointer(loc)
        return [address, Load(dst, base, slot.offset, slot.ty, loc=loc)]

    updated = web - _loaded(facts, loop, of_slot)  # updates and their copies
    for label in sorted({p for p, _ in entries}):
        block = facts.by_label[label]
        term = block.terminator
        block.instrs[-1:] = [*load(value, term.loc), term]
    for label in loop.blocks:
        block = facts.by_label[label]
        rewritten: list[Instr] = []
        for instr in block.instrs:
            if id(instr) in updates:
                other = instr.b if instr.a in web else instr.a
                instr = BinOp(value, instr.op, value, other, instr.ty, loc=instr.loc)
            elif isinstance(instr, Store) and of_slot(instr):
                instr = Store(instr.base, instr.offset, value, instr.ty, loc=instr.loc)
            elif isinstance(instr, Assign) and instr.src in updated:
                continue  # a copy of an updated value, read only by updates: v is it
            rewritten.append(instr)
        block.instrs = rewritten
    return True


def _value_web(
    facts: _Facts, loop: Loop, slot: _Slot, of_slot: Callable[[Instr], bool]
) -> tuple[set[Temp], set[int]]:
    """The temps of the loop that hold the slot's value: loaded from it,
    updated from one of them, copied from one; and the updates (``id``)."""
    web = {
        i.dst for _, _, i in facts.instrs(loop) if isinstance(i, Load) and of_slot(i)
    }
    updates: set[int] = set()
    grew = True
    while grew:
        grew = False
        for _, _, instr in facts.instrs(loop):
            if isinstance(instr, Assign) and instr.src in web and instr.dst not in web:
                web.add(instr.dst)
                grew = True
            elif _updates(instr, slot, web) and instr.dst not in web:
                web.add(instr.dst)
                updates.add(id(instr))
                grew = True
    return web, updates


def _updates(instr: Instr, slot: _Slot, web: set[Temp]) -> bool:
    """Whether ``instr`` is ``value <op> x`` with ``value`` in the web, ``x`` not.
    (A signed ``xor`` under 32 bits is left out: selection does not normalise
    it, and the verifier's result is then wider than the type.)"""
    if not isinstance(instr, BinOp) or instr.op not in ACCUMULATE_OPS or instr.ty != slot.ty:
        return False
    if instr.op == "xor" and instr.ty.signed and instr.ty.bits < 32:
        return False
    if instr.a in web:
        return instr.b not in web
    return instr.op in _COMMUTATIVE and instr.b in web and instr.a not in web


def _web_is_private(facts: _Facts, loop: Loop, web: set[Temp]) -> bool:
    """Each temp of the web is a scalar defined once, and only the loop reads it."""
    inside = set(loop.blocks)
    return not any(
        t.pointer or len(facts.defs.get(t, [])) != 1 or not facts.places[t] <= inside
        for t in web
    )


def _holding(
    facts: _Facts, loop: Loop, web: set[Temp], of_slot: Callable[[Instr], bool]
) -> dict[int, set[Temp]]:
    """For each instruction of the loop (by ``id``), the temps of the web
    that hold what the frame slot holds right before it. Nothing does on
    entering the loop, nor on an edge a failed packet check takes."""
    inside = set(loop.blocks)
    at_end: dict[str, set[Temp]] = {label: set(web) for label in loop.blocks}
    result: dict[int, set[Temp]] = {}
    changed = True
    while changed:
        changed = False
        for label in loop.blocks:
            incoming = [
                at_end[pred] if pred in inside and not failed else set()
                for pred, failed in facts.entries[label]
            ]
            current = set.intersection(*incoming) if incoming else set()
            for instr in facts.by_label[label].instrs:
                result[id(instr)] = set(current)
                current -= set(instr.defs())
                if isinstance(instr, Load) and of_slot(instr):
                    current.add(instr.dst)
                elif isinstance(instr, Store) and of_slot(instr):
                    current = {instr.src} & web if isinstance(instr.src, Temp) else set()
                elif isinstance(instr, Assign) and instr.src in current:
                    current.add(instr.dst)
            if at_end[label] != current:
                at_end[label] = current
                changed = True
    return result


def _loaded(facts: _Facts, loop: Loop, of_slot: Callable[[Instr], bool]) -> set[Temp]:
    """The temps of the loop loaded from the slot, and their copies."""
    loaded = {i.dst for _, _, i in facts.instrs(loop) if isinstance(i, Load) and of_slot(i)}
    grew = True
    while grew:
        grew = False
        for _, _, instr in facts.instrs(loop):
            if isinstance(instr, Assign) and instr.src in loaded and instr.dst not in loaded:
                loaded.add(instr.dst)
                grew = True
    return loaded


def _rewritable(
    facts: _Facts, loop: Loop, web: set[Temp], updates: set[int],
    holding: dict[int, set[Temp]], of_slot: Callable[[Instr], bool],
) -> bool:
    """Whether the rewrite keeps what the loop computes, and ``v`` free of
    any use but updates and stores: every store of the slot stores an
    update made just before; every update reads what the frame holds; an
    updated value (or a copy of one) is read by nothing else. Values loaded
    from the frame (and their copies) may be read by anything: they stay."""
    loaded = _loaded(facts, loop, of_slot)
    for block, index, instr in facts.instrs(loop):
        held = holding[id(instr)]
        if isinstance(instr, Store) and of_slot(instr):
            if not _stored_at_once(block, index, web, updates, of_slot):
                return False
        elif id(instr) in updates:
            if not web & set(instr.uses()) <= held:
                return False
        elif isinstance(instr, Assign) and instr.src in web:
            continue  # a copy: its reads are checked
        elif any(isinstance(v, Temp) and v in web - loaded for v in instr.uses()):
            return False
    return True


def _stored_at_once(
    block: Block, index: int, web: set[Temp], updates: set[int],
    of_slot: Callable[[Instr], bool],
) -> bool:
    """Whether the store at ``index`` stores an update made earlier in its
    block, with nothing in between reading the web or touching the slot."""
    store = block.instrs[index]
    for back in range(index - 1, -1, -1):
        instr = block.instrs[back]
        if store.src in instr.defs():
            return id(instr) in updates
        if of_slot(instr) or web & {v for v in instr.uses() if isinstance(v, Temp)}:
            return False
    return False
