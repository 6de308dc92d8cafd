"""The IR's structural rules, checked between passes."""

from __future__ import annotations

from collections import Counter

from ..nodes import TERMINATORS, Function, PacketPtr, Temp
from ..nodes import Block as Block


class ValidationError(Exception):
    """The IR breaks a structural rule (a compiler bug)."""


def validate(function: Function) -> None:
    if not function.blocks:
        raise ValidationError(f"function {function.name} has no blocks")
    labels = [b.label for b in function.blocks]
    duplicates = {label for label, count in Counter(labels).items() if count > 1}
    if duplicates:
        raise ValidationError(f"labels defined twice: {sorted(duplicates)}")
    defined = {t for b in function.blocks for i in b.instrs for t in i.defs()}
    known = set(labels)
    for block in function.blocks:
        _check_block(block, known, defined)


def _check_block(block: Block, labels: set[str], defined: set[Temp]) -> None:
    if not block.instrs or not isinstance(block.terminator, TERMINATORS):
        raise ValidationError(f"block {block.label} does not end with a terminator")
    for instr in block.instrs[:-1]:
        if isinstance(instr, TERMINATORS):
            raise ValidationError(f"block {block.label} has a terminator before its end: {instr}")
    for target in block.successors():
        if target not in labels:
            raise ValidationError(f"block {block.label} jumps to undefined label {target}")
    for instr in block.instrs:
        for value in instr.uses():
            if isinstance(value, Temp) and value not in defined:
                raise ValidationError(f"{value} is used in {block.label} but never defined")
        if isinstance(instr, PacketPtr) and instr.size <= 0:
            raise ValidationError(f"packet access of {instr.size} bytes: {instr}")
