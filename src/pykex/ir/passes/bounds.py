"""Bounds-check elimination for packet accesses.

A ``PacketPtr`` with a constant offset whose range ``[offset, offset+size)``
lies inside the range an earlier constant ``PacketPtr`` of the same block
already checked becomes pointer arithmetic on the earlier pointer. The
verifier keeps the checked range for derived packet pointers, so this stays
verifiable. A helper call may move the packet, so it forgets earlier checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..nodes import U64, Assign, BinOp, Call, Function, PacketPtr, Temp
from .simplify import definitions


@dataclass
class _Checked:
    pointer: Temp
    offset: int
    size: int

    def covers(self, offset: int, size: int) -> bool:
        return self.offset <= offset and offset + size <= self.offset + self.size


def eliminate_bounds_checks(function: Function) -> bool:
    defs = definitions(function)
    changed = False
    for block in function.blocks:
        checked: list[_Checked] = []
        for index, instr in enumerate(block.instrs):
            if isinstance(instr, Call):
                checked.clear()
                continue
            if not isinstance(instr, PacketPtr) or not isinstance(instr.offset, int):
                continue
            cover = next((c for c in checked if c.covers(instr.offset, instr.size)), None)
            if cover is None:
                if len(defs.get(instr.dst, [])) == 1:
                    checked.append(_Checked(instr.dst, instr.offset, instr.size))
                continue
            delta = instr.offset - cover.offset
            block.instrs[index] = (
                BinOp(instr.dst, "add", cover.pointer, delta, U64, loc=instr.loc)
                if delta
                else Assign(instr.dst, cover.pointer, loc=instr.loc)
            )
            changed = True
    return changed
