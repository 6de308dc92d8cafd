"""Frame store-to-load forwarding, dead frame stores, packet copies read in
place, cancelling byte swaps and redundant conversions.

The front end keeps every local in the frame (docs/compiler.md), so each
statement stores its result and the next one loads it again. Within a
block, and from a block into a successor it alone enters,
:func:`forward_frame_stores` replaces a load from a frame slot whose
content is known (stored, or loaded before) by a conversion of the known
value: ``Cast`` has exactly the load's semantics
(truncate to the slot's width, extend as its type says). Anything that may
write the frame in ways the pass does not follow (a helper call, a store
through a pointer that might point into the frame) forgets what it knew.

:func:`eliminate_redundant_casts` then turns a ``Cast`` of a value already
normalised to the target type into a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..nodes import (
    Assign,
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
    LoopBack,
    MemCopy,
    MemZero,
    PacketPtr,
    Raise,
    Return,
    Scalar,
    Store,
    Temp,
    UnOp,
    Value,
)
from .simplify import definitions


@dataclass(frozen=True)
class _Known:
    value: Value
    ty: Scalar
    normalised: bool  # value already holds the slot read as ``ty``


def _frame_offsets(function: Function) -> dict[Temp, int]:
    """Pointer temps defined once, by ``FrameAddr``: their byte in the frame."""
    return {
        temp: found[0].offset
        for temp, found in definitions(function).items()
        if len(found) == 1 and isinstance(found[0], FrameAddr)
    }


def _outside_frame(function: Function) -> set[Temp]:
    """Pointer temps that can never point into the frame."""
    out = set()
    for temp, found in definitions(function).items():
        if all(isinstance(i, Call | PacketPtr | GlobalAddr | ContextPtr) for i in found):
            out.add(temp)
    return out


def forward_frame_stores(function: Function) -> bool:
    frame = _frame_offsets(function)
    elsewhere = _outside_frame(function)
    only_predecessor = _only_predecessors(function)
    known_at_end: dict[str, dict[tuple[int, int], _Known]] = {}
    changed = False
    for block in function.blocks:
        # A block entered from one block only starts with what that one knew
        # at its end (its values dominate this block).
        before = only_predecessor.get(block.label)
        known: dict[tuple[int, int], _Known] = dict(known_at_end.get(before or "", {}))
        for index, instr in enumerate(block.instrs):
            learned: tuple[tuple[int, int], _Known] | None = None
            if isinstance(instr, Load) and instr.base in frame and not instr.big_endian:
                where = (frame[instr.base] + instr.offset, instr.ty.size)
                found = known.get(where) or _covering(known, *where)
                if found is None:
                    learned = where, _Known(instr.dst, instr.ty, True)
                else:
                    # A load after a store truncates and extends: exactly a Cast.
                    instr = block.instrs[index] = (
                        Assign(instr.dst, found.value, loc=instr.loc)
                        if found.normalised and found.ty == instr.ty
                        else Cast(instr.dst, found.value, instr.ty, loc=instr.loc)
                    )
                    changed = True
            elif isinstance(instr, Store) and instr.base in frame:
                start = frame[instr.base] + instr.offset
                _forget(known, start, instr.ty.size)
                pointer = isinstance(instr.src, Temp) and instr.src.pointer
                if not instr.big_endian and not pointer:
                    learned = (start, instr.ty.size), _Known(instr.src, instr.ty, False)
            elif isinstance(instr, MemCopy | MemZero):
                base = instr.dst if isinstance(instr, MemCopy) else instr.base
                offset = instr.dst_offset if isinstance(instr, MemCopy) else instr.offset
                if base in frame:
                    _forget(known, frame[base] + offset, instr.size)
                elif base not in elsewhere:
                    known.clear()
            elif isinstance(instr, Store | AtomicAdd):
                if instr.base not in elsewhere:  # it may point into the frame
                    known.clear()
            elif isinstance(instr, Call):  # a helper may write through a frame pointer
                known.clear()
            # A temp written again no longer holds what was stored from it.
            for written in instr.defs():
                for key in [k for k, v in known.items() if v.value is written]:
                    del known[key]
            if learned is not None:
                known[learned[0]] = learned[1]
        known_at_end[block.label] = known
    return changed


def cancel_byte_swaps(function: Function) -> bool:
    """A big-endian load whose value only a big-endian store of the same
    width reads moves the bytes as they are: both lose their swap."""
    defs = definitions(function)
    readers: dict[Temp, list[Instr]] = {}
    for block in function.blocks:
        for instr in block.instrs:
            for value in instr.uses():
                if isinstance(value, Temp):
                    readers.setdefault(value, []).append(instr)
    changed = False
    for temp, found in readers.items():
        source = defs.get(temp, [])
        if len(found) != 1 or len(source) != 1:
            continue
        load, store = source[0], found[0]
        if (
            isinstance(load, Load) and load.big_endian and isinstance(store, Store)
            and store.big_endian and store.src is temp and store.base is not temp
            and store.ty.size == load.ty.size
        ):
            load.big_endian = store.big_endian = False
            changed = True
    return changed


@dataclass(frozen=True)
class _Mirror:
    """Frame bytes ``start .. start + size`` hold a copy of the packet at
    ``pointer + offset``."""

    start: int
    size: int
    pointer: Temp
    offset: int


def read_packet_copies_in_place(function: Function) -> bool:
    """A load from frame bytes copied from the packet (``read(off, Header)``
    copies the whole header) reads the packet instead, while nothing may
    have written the packet or those frame bytes and no helper has run
    (helpers may move the packet). The copy then often has no reader left
    and :func:`eliminate_dead_frame_stores` drops it. The packet pointer is
    one a check defined: the load lies inside the range the copy read, which
    the verifier knows to be inside the packet."""
    frame = _frame_offsets(function)
    checked = {
        temp for temp, found in definitions(function).items()
        if len(found) == 1 and isinstance(found[0], PacketPtr)
    }  # fmt: skip
    only_predecessor = _only_predecessors(function)
    at_end: dict[str, list[_Mirror]] = {}
    changed = False
    for block in function.blocks:
        mirrors = list(at_end.get(only_predecessor.get(block.label) or "", []))
        for index, instr in enumerate(block.instrs):
            if isinstance(instr, Load) and instr.base in frame:
                start = frame[instr.base] + instr.offset
                found = next(
                    (m for m in mirrors
                     if m.start <= start and start + instr.ty.size <= m.start + m.size),
                    None,
                )  # fmt: skip
                if found is not None:
                    block.instrs[index] = Load(
                        instr.dst, found.pointer, found.offset + start - found.start,
                        instr.ty, instr.big_endian, loc=instr.loc,
                    )
                    changed = True
            elif isinstance(instr, Call):
                mirrors = []
            elif isinstance(instr, Store | AtomicAdd | MemCopy | MemZero):
                base = instr.dst if isinstance(instr, MemCopy) else instr.base
                if base not in frame:
                    mirrors = []  # it may write the packet
                else:
                    size = instr.ty.size if isinstance(instr, Store | AtomicAdd) else instr.size
                    offset = instr.dst_offset if isinstance(instr, MemCopy) else instr.offset
                    start = frame[base] + offset
                    mirrors = [
                        m for m in mirrors
                        if not (m.start < start + size and start < m.start + m.size)
                    ]  # fmt: skip
            written = set(instr.defs())
            mirrors = [m for m in mirrors if m.pointer not in written]
            if isinstance(instr, MemCopy) and instr.dst in frame and instr.src in checked:
                mirrors.append(_Mirror(
                    frame[instr.dst] + instr.dst_offset, instr.size, instr.src, instr.src_offset
                ))
        at_end[block.label] = mirrors
    return changed


def _only_predecessors(function: Function) -> dict[str, str]:
    """Blocks reached only by the terminator of one other block: label -> that block."""
    sources: dict[str, list[str]] = {}
    for block in function.blocks:
        for target in block.successors():
            sources.setdefault(target, []).append(block.label)
        for instr in block.instrs[:-1]:
            # successors() lists packet checks' failure targets too, but those
            # are entered mid-block: a second entry keeps them out.
            if isinstance(instr, PacketPtr):
                sources.setdefault(instr.fail, []).append(block.label)
    entry = function.blocks[0].label
    return {
        label: found[0]
        for label, found in sources.items()
        if len(found) == 1 and label != entry
    }


def _covering(known: dict[tuple[int, int], _Known], start: int, size: int) -> _Known | None:
    """A wider value stored at ``start``: its low bytes are the ``size`` asked for
    (little-endian), so a Cast of it reads them."""
    for (offset, width), found in known.items():
        if offset == start and width > size:
            return _Known(found.value, found.ty, normalised=False)
    return None


def _forget(known: dict[tuple[int, int], _Known], start: int, size: int) -> None:
    """Drop what is known about bytes ``start .. start + size`` of the frame."""
    for key in [k for k in known if k[0] < start + size and start < k[0] + k[1]]:
        del known[key]


def _fits(have: Scalar, want: Scalar) -> bool:
    """Whether every value normalised to ``have`` is normalised to ``want`` too."""
    if have.signed:
        return want.signed and want.bits >= have.bits
    return want.bits > have.bits or (want.bits == have.bits and not want.signed)


def _normalised_to(
    instr: Instr, ty: Scalar, defs: dict[Temp, list[Instr]], depth: int = 0
) -> bool:
    """Whether ``instr``'s result is already normalised to ``ty`` (following copies)."""
    if isinstance(instr, Assign):
        source = defs.get(instr.src, []) if isinstance(instr.src, Temp) else []
        return len(source) == 1 and depth < 8 and _normalised_to(source[0], ty, defs, depth + 1)
    if isinstance(instr, Load):
        return _fits(instr.ty, ty)
    if isinstance(instr, Cast):
        return _fits(instr.to, ty)
    if isinstance(instr, BinOp | UnOp):
        return _fits(instr.ty, ty) and not (isinstance(instr, UnOp) and instr.op == "not")
    return isinstance(instr, Compare)  # 0 or 1: normalised to every type


def eliminate_redundant_casts(function: Function) -> bool:
    defs = definitions(function)
    changed = False
    for block in function.blocks:
        for index, instr in enumerate(block.instrs):
            if not isinstance(instr, Cast) or not isinstance(instr.a, Temp):
                continue
            found = defs.get(instr.a, [])
            if len(found) == 1 and _normalised_to(found[0], instr.to, defs):
                block.instrs[index] = Assign(instr.dst, instr.a, loc=instr.loc)
                changed = True
    return changed


def eliminate_dead_frame_stores(function: Function) -> bool:
    """Drop writes to frame bytes that no path reads before they are written
    again or the program ends (the frame holds nothing from one run to the
    next: the front end writes every local before reading it).

    A backward analysis of the live bytes of the frame (bit ``i`` of an int
    is byte ``i``). Loads and copies read what they name; any other use of a
    frame pointer (a helper argument, a copy of the pointer...) reads every
    byte from where it points on, and a load through a pointer of unknown
    origin reads the whole frame. Only plain stores, copies and zero-fills
    into the frame kill."""
    liveness = _FrameLiveness(function)
    live_in: dict[str, int] = {b.label: 0 for b in function.blocks}

    def live_out(block: Block) -> int:
        live = 0
        for label in _terminator_targets(block.terminator):
            live |= live_in[label]
        return live

    changed = True
    while changed:
        changed = False
        for block in reversed(function.blocks):
            live = live_out(block)
            for instr in reversed(block.instrs):
                live = liveness.before(instr, live, live_in)[0]
            if live != live_in[block.label]:
                live_in[block.label] = live
                changed = True
    removed = False
    for block in function.blocks:
        live = live_out(block)
        kept: list[Instr] = []
        for instr in reversed(block.instrs):
            live, dead = liveness.before(instr, live, live_in)
            if not dead:
                kept.append(instr)
        if len(kept) != len(block.instrs):
            block.instrs = kept[::-1]
            removed = True
    return removed


class _FrameLiveness:
    def __init__(self, function: Function) -> None:
        self.frame = _frame_offsets(function)
        self.elsewhere = _outside_frame(function)
        self.size = max(function.frame_size, *(o + 8 for o in self.frame.values()), 8)
        self.everything = (1 << self.size) - 1

    def before(self, instr: Instr, live: int, live_in: dict[str, int]) -> tuple[int, bool]:
        """The bytes live before ``instr`` given those live after it, and
        whether ``instr`` only writes bytes nobody reads."""
        dead = False
        written = self.written(instr)
        if written:
            dead = not live & written
            live &= ~written
        if isinstance(instr, Return | Raise):
            live = 0  # the frame is dead once the program ends
        if isinstance(instr, PacketPtr):
            live |= live_in[instr.fail]
        return live | self.read(instr), dead

    def bits(self, start: int, size: int) -> int:
        return ((1 << max(size, 0)) - 1) << start

    def written(self, instr: Instr) -> int:
        if isinstance(instr, Store | MemZero) and instr.base in self.frame:
            size = instr.ty.size if isinstance(instr, Store) else instr.size
            return self.bits(self.frame[instr.base] + instr.offset, size)
        if isinstance(instr, MemCopy) and instr.dst in self.frame:
            return self.bits(self.frame[instr.dst] + instr.dst_offset, instr.size)
        return 0

    def read(self, instr: Instr) -> int:
        frame = self.frame
        if isinstance(instr, Load):
            if instr.base in frame:
                return self.bits(frame[instr.base] + instr.offset, instr.ty.size)
            return 0 if instr.base in self.elsewhere else self.everything
        read = 0
        addresses: set[int] = set()  # operand positions that are addresses, not values
        if isinstance(instr, MemCopy):
            if instr.src in frame:
                read = self.bits(frame[instr.src] + instr.src_offset, instr.size)
            elif instr.src not in self.elsewhere:
                return self.everything
            addresses = {0, 1}
        elif isinstance(instr, Store | MemZero):
            addresses = {0}
        for position, value in enumerate(instr.uses()):
            if position not in addresses and isinstance(value, Temp) and value in frame:
                start = frame[value]
                read |= self.bits(start, self.size - start)  # the pointer escapes
        return read


def _terminator_targets(instr: Instr) -> list[str]:
    if isinstance(instr, Jump):
        return [instr.target]
    if isinstance(instr, Branch):
        return [instr.then, instr.orelse]
    if isinstance(instr, LoopBack):
        return [instr.target, instr.exhausted]
    return []
