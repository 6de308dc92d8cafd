"""Frame store-to-load forwarding and redundant conversions.

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
    Call,
    Cast,
    Compare,
    ContextPtr,
    FrameAddr,
    Function,
    GlobalAddr,
    Instr,
    Load,
    MemCopy,
    MemZero,
    PacketPtr,
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
