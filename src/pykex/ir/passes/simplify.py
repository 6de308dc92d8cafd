"""Constant folding, copy propagation, branch folding and dead-code elimination.

The IR is not in SSA form, so the rewrites that move values across
instructions only touch temps with exactly one definition: a used temp is
defined before every use, so a single definition dominates all of them.
"""

from __future__ import annotations

from collections.abc import Callable

from ..interp import binop, cast, compare, unop
from ..nodes import (
    Assign,
    AtomicAdd,
    BinOp,
    Block,
    Branch,
    Call,
    Cast,
    Compare,
    Function,
    Instr,
    Jump,
    Load,
    MemCopy,
    MemZero,
    PacketPtr,
    Raise,
    Return,
    Store,
    Temp,
    UnOp,
    Value,
)


def definitions(function: Function) -> dict[Temp, list[Instr]]:
    found: dict[Temp, list[Instr]] = {}
    for block in function.blocks:
        for instr in block.instrs:
            for temp in instr.defs():
                found.setdefault(temp, []).append(instr)
    return found


def _folded(instr: Instr) -> int | None:
    """The constant ``instr`` computes, with the run-time semantics, or None."""
    if isinstance(instr, BinOp) and isinstance(instr.a, int) and isinstance(instr.b, int):
        if instr.op in ("div", "mod") and instr.b == 0:
            return None
        return binop(instr.op, instr.a, instr.b, instr.ty)
    if isinstance(instr, UnOp) and isinstance(instr.a, int):
        return unop(instr.op, instr.a, instr.ty)
    if isinstance(instr, Cast) and isinstance(instr.a, int):
        return cast(instr.a, instr.to)
    if isinstance(instr, Compare) and isinstance(instr.a, int) and isinstance(instr.b, int):
        return int(compare(instr.op, instr.a, instr.b, instr.signed))
    return None


def fold_constants(function: Function) -> bool:
    """Replace operations on constants by ``dst = constant``."""
    changed = False
    for block in function.blocks:
        for index, instr in enumerate(block.instrs):
            value = _folded(instr)
            if value is not None:
                block.instrs[index] = Assign(instr.dst, value, loc=instr.loc)
                changed = True
    return changed


def propagate_copies(function: Function) -> bool:
    """Uses read the source of a copy ``t = v`` directly: everywhere when ``t`` has
    one definition and ``v`` is a constant; within the block otherwise, until
    ``t`` or ``v`` is written again."""
    defs = definitions(function)
    constants = {
        temp: found[0].src
        for temp, found in defs.items()
        if len(found) == 1 and isinstance(found[0], Assign) and isinstance(found[0].src, int)
        and not temp.pointer
    }  # fmt: skip
    changed = False
    for block in function.blocks:
        copies: dict[Temp, Value] = {}
        for instr in block.instrs:
            if _rewrite_uses(instr, lambda v, known=copies: known.get(v, constants.get(v, v))):
                changed = True
            for written in instr.defs():
                copies = {t: v for t, v in copies.items() if written not in (t, v)}
            if isinstance(instr, Assign) and instr.src is not instr.dst and (
                (isinstance(instr.src, int) and not instr.dst.pointer)
                or (isinstance(instr.src, Temp) and instr.src.pointer == instr.dst.pointer)
            ):
                copies[instr.dst] = instr.src
    return changed


# Operands that hold any value, and those that must stay pointer temps.
_VALUE_FIELDS: dict[type, tuple[str, ...]] = {
    Assign: ("src",), BinOp: ("a", "b"), UnOp: ("a",), Cast: ("a",), Compare: ("a", "b"),
    Store: ("src",), AtomicAdd: ("src",), PacketPtr: ("offset",), Branch: ("a", "b"),
    Return: ("value",),
}  # fmt: skip
_POINTER_FIELDS: dict[type, tuple[str, ...]] = {
    Load: ("base",), Store: ("base",), AtomicAdd: ("base",), MemCopy: ("dst", "src"),
    MemZero: ("base",),
}  # fmt: skip


def _rewrite_uses(instr: Instr, resolve: Callable[[Value], Value]) -> bool:
    changed = False
    for name in _VALUE_FIELDS.get(type(instr), ()):
        old = getattr(instr, name)
        new = resolve(old) if isinstance(old, Temp) else old
        if new is not old:
            setattr(instr, name, new)
            changed = True
    for name in _POINTER_FIELDS.get(type(instr), ()):
        old = getattr(instr, name)
        new = resolve(old)
        if new is not old and isinstance(new, Temp):
            setattr(instr, name, new)
            changed = True
    if isinstance(instr, Call | Raise):
        for position, old in enumerate(instr.args):
            new = resolve(old) if isinstance(old, Temp) else old
            if new is not old:
                instr.args[position] = new
                changed = True
    return changed


def fold_branches(function: Function) -> bool:
    """A branch on constants, or to one label twice, becomes a jump."""
    changed = False
    for block in function.blocks:
        term = block.terminator
        if not isinstance(term, Branch):
            continue
        if term.then == term.orelse:
            target = term.then
        elif isinstance(term.a, int) and isinstance(term.b, int):
            taken = compare(term.op, term.a, term.b, term.signed)
            target = term.then if taken else term.orelse
        else:
            continue
        block.instrs[-1] = Jump(target, loc=term.loc)
        changed = True
    return changed


_INVERSE = {"eq": "ne", "ne": "eq", "lt": "ge", "le": "gt", "gt": "le", "ge": "lt"}


def fuse_compare_branches(function: Function) -> bool:
    """A branch on whether a comparison's 0/1 result is zero branches on the
    comparison itself (``c = cmp.lt a, b; branch.ne c, 0`` becomes ``branch.lt
    a, b``), and a branch on whether ``x ^ k`` is zero (64 bits) on whether
    ``x`` is ``k``. The defining instruction must be in the same block, its
    result read nowhere else, and its operands not written in between."""
    defs = definitions(function)
    uses = _use_counts(function)
    changed = False
    for block in function.blocks:
        term = block.terminator
        if not isinstance(term, Branch) or term.op not in ("eq", "ne"):
            continue
        tested = term.a if term.b == 0 else term.b if term.a == 0 else None
        if not isinstance(tested, Temp) or uses.get(tested) != 1 or len(defs.get(tested, [])) != 1:
            continue
        source = defs[tested][0]
        if not _unchanged_until_end(block, source):
            continue
        if isinstance(source, Compare):
            op = source.op if term.op == "ne" else _INVERSE[source.op]
            block.instrs[-1] = Branch(
                op, source.a, source.b, source.signed, term.then, term.orelse, loc=term.loc
            )
        elif (
            isinstance(source, BinOp) and source.op == "xor" and source.ty.bits == 64
            and isinstance(source.b, int)
        ):
            block.instrs[-1] = Branch(
                term.op, source.a, source.b, False, term.then, term.orelse, loc=term.loc
            )
        else:
            continue
        changed = True
    return changed


def _use_counts(function: Function) -> dict[Temp, int]:
    counts: dict[Temp, int] = {}
    for block in function.blocks:
        for instr in block.instrs:
            for value in instr.uses():
                if isinstance(value, Temp):
                    counts[value] = counts.get(value, 0) + 1
    return counts


def _unchanged_until_end(block: Block, source: Instr) -> bool:
    """Whether ``source`` is in ``block`` and nothing after it writes its operands."""
    position = next((i for i, instr in enumerate(block.instrs) if instr is source), None)
    if position is None:
        return False
    operands = {v for v in source.uses() if isinstance(v, Temp)}
    return not any(
        operands & set(instr.defs()) for instr in block.instrs[position + 1 :]
    )


MAX_PACKET_OFFSET = 0xFFFF  # the verifier's bound on packet offsets; the backend's too


def fold_packet_checks(function: Function) -> bool:
    """A packet check of a constant range that can never fit always fails:
    its block ends there, in a jump to the failure block (and the blocks
    only the rest of it reached go too: they may use what it defined)."""
    changed = False
    for block in function.blocks:
        for index, instr in enumerate(block.instrs):
            if (
                isinstance(instr, PacketPtr) and isinstance(instr.offset, int)
                and not 0 <= instr.offset <= MAX_PACKET_OFFSET - instr.size
            ):
                block.instrs = [*block.instrs[:index], Jump(instr.fail, loc=instr.loc)]
                changed = True
                break
    if changed:
        drop_unreachable_blocks(function)
    return changed


def eliminate_dead_code(function: Function) -> bool:
    """Drop blocks the entry cannot reach and effect-free instructions whose
    results nobody reads."""
    changed = drop_unreachable_blocks(function)
    while True:
        used = {
            v for b in function.blocks for i in b.instrs for v in i.uses() if isinstance(v, Temp)
        }
        removed = False
        for block in function.blocks:
            kept = [
                i for i in block.instrs
                if i.has_effects or i is block.terminator or not i.defs()
                or any(t in used for t in i.defs())
            ]  # fmt: skip
            if len(kept) != len(block.instrs):
                block.instrs = kept
                removed = True
        if not removed:
            return changed
        changed = True


def merge_blocks(function: Function) -> bool:
    """A block that only jumps to a block nothing else enters takes that
    block's instructions in place of the jump (so the passes that work
    within a block see both)."""
    entries: dict[str, int] = {}
    for block in function.blocks:
        for label in block.successors():
            entries[label] = entries.get(label, 0) + 1
    by_label = {b.label: b for b in function.blocks}
    entry = function.blocks[0].label
    merged: set[str] = set()
    for block in function.blocks:
        if block.label in merged:
            continue
        while True:
            term = block.terminator
            if not isinstance(term, Jump) or term.target in (block.label, entry):
                break
            if entries.get(term.target) != 1:
                break
            absorbed = by_label[term.target]
            block.instrs = block.instrs[:-1] + absorbed.instrs
            merged.add(absorbed.label)
    function.blocks = [b for b in function.blocks if b.label not in merged]
    return bool(merged)


def drop_unreachable_blocks(function: Function) -> bool:
    by_label = {b.label: b for b in function.blocks}
    reached = {function.blocks[0].label}
    work = [function.blocks[0]]
    while work:
        block = work.pop()
        for label in block.successors():
            if label not in reached:
                reached.add(label)
                work.append(by_label[label])
    kept = [b for b in function.blocks if b.label in reached]
    changed = len(kept) != len(function.blocks)
    function.blocks = kept
    return changed
