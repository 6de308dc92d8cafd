"""The register allocator never gives two simultaneously live temps one place.

Checked on the IR of generated extensions (:mod:`pykex.testing.progen`), at
both optimisation levels: for every instruction, each temp it defines must
have a location different from every other temp live after it (and, for a
packet check, from every temp its failure path reads: the pointer is
written before the bounds test). A copy may share the place of the temp it
copies: both hold one value. No kernel needed.
"""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings

from pykex.bpf.codegen.regalloc import _live_out, _step_back, allocate, liveness, rematerialisable
from pykex.ir.nodes import Assign, Function, PacketPtr
from pykex.ir.passes import optimize
from pykex.lang import compile_to_ir
from pykex.testing.progen import programs


def conflicts(function: Function) -> list[str]:
    allocation = allocate(function)
    remat = set(rematerialisable(function))
    live_in = liveness(function, remat)
    found = []
    for block in function.blocks:
        live = _live_out(block, live_in)
        for instr in reversed(block.instrs):
            after = set(live)
            if isinstance(instr, PacketPtr):
                after |= live_in[instr.fail]
            for defined in instr.defs():
                if defined in remat:
                    continue
                place = allocation.location(defined)
                for other in after - {defined}:
                    if isinstance(instr, Assign) and instr.src is other:
                        continue  # a copy may share its source's place: one value
                    if allocation.locations.get(other) == place:
                        found.append(f"{defined} and {other} share {place} at {instr}")
            live = _step_back(instr, live, live_in, remat)
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=programs())
def test_live_temps_never_share_a_location(source: str) -> None:
    module = compile_to_ir(source, "generated.py")
    for level in ("O0", "O1"):
        optimized = copy.deepcopy(module)
        optimize(optimized, level)
        for program in optimized.programs:
            assert conflicts(program.function) == [], source

