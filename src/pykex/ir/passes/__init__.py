"""pykex.ir.passes: optimisations over ``pykex.ir`` functions.

Public API:

* ``optimize(target, level="O1")``: run the pipeline of ``level`` (``O0``:
  none, ``O1``: all) on a :class:`~pykex.ir.nodes.Function`, a
  :class:`~pykex.ir.nodes.ProgramIR` or every program of a
  :class:`~pykex.ir.nodes.ModuleIR`, in place, validating after each pass.
* ``legalize(function)``: what the backend runs before selecting code at
  any level: no instruction may be unreachable (the verifier refuses it).
* ``validate(function)``: raise :class:`ValidationError` unless every used
  temp is defined, every label exists and each block ends with exactly one
  terminator.
* the passes themselves, each ``pass(function) -> bool`` (changed anything):
  ``fold_constants``, ``forward_frame_stores``, ``read_packet_copies_in_place``,
  ``cancel_byte_swaps``, ``eliminate_redundant_casts``, ``propagate_copies``,
  ``fuse_compare_branches``, ``fold_branches``,
  ``merge_blocks``, ``fold_packet_checks``, ``drop_unreachable_blocks``, ``eliminate_dead_code``,
  ``eliminate_dead_frame_stores``, ``eliminate_bounds_checks``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..nodes import Function, ModuleIR, ProgramIR
from .bounds import eliminate_bounds_checks
from .loops import carry_accumulators, unroll_loops
from .memory import (
    cancel_byte_swaps,
    eliminate_dead_frame_stores,
    eliminate_redundant_casts,
    forward_frame_stores,
    read_packet_copies_in_place,
)
from .simplify import (
    drop_unreachable_blocks,
    eliminate_dead_code,
    fold_branches,
    fold_constants,
    fold_packet_checks,
    fuse_compare_branches,
    merge_blocks,
    propagate_copies,
)
from .validate import ValidationError, validate

Pass = Callable[[Function], bool]

PIPELINES: dict[str, tuple[Pass, ...]] = {
    "O0": (),
    "O1": (
        fold_constants,
        fold_packet_checks,
        forward_frame_stores,
        read_packet_copies_in_place,
        cancel_byte_swaps,
        eliminate_redundant_casts,
        propagate_copies,
        fuse_compare_branches,
        fold_branches,
        merge_blocks,
        eliminate_bounds_checks,
        eliminate_dead_frame_stores,
        eliminate_dead_code,
    ),
}
MAX_ROUNDS = 8  # the pipeline repeats while it changes something

# Passes that run once, after the pipeline has reached its fixed point, each
# followed by the pipeline again (they would not stop if repeated).
LATE: dict[str, tuple[Pass, ...]] = {"O0": (), "O1": (unroll_loops,)}
# Passes that run once at the very end: after carry_accumulators, a pass
# forwarding frame stores would copy an accumulator's register.
FINAL: dict[str, tuple[Pass, ...]] = {"O0": (), "O1": (carry_accumulators,)}

# What the backend needs at every level: the verifier refuses code it cannot
# reach, such as what follows a packet check that always fails.
LEGALIZE: tuple[Pass, ...] = (fold_packet_checks, fold_branches, drop_unreachable_blocks)


def optimize(target: Function | ProgramIR | ModuleIR, level: str = "O1") -> None:
    if level not in PIPELINES:
        raise ValueError(f"unknown optimisation level {level!r} (known: {', '.join(PIPELINES)})")
    if isinstance(target, ModuleIR):
        functions = [p.function for p in target.programs]
    elif isinstance(target, ProgramIR):
        functions = [target.function]
    else:
        functions = [target]
    for function in functions:
        run_pipeline(function, PIPELINES[level])
        for late in LATE[level]:
            if late(function):
                run_pipeline(function, PIPELINES[level])
        for final in FINAL[level]:
            if final(function):
                validate(function)


def legalize(function: Function) -> None:
    """Make ``function`` fit for the backend, in place, whatever its level."""
    run_pipeline(function, LEGALIZE)


def run_pipeline(function: Function, passes: tuple[Pass, ...]) -> None:
    validate(function)
    for _ in range(MAX_ROUNDS):
        changed = False
        for step in passes:
            if step(function):
                changed = True
                try:
                    validate(function)
                except ValidationError as error:
                    raise ValidationError(f"after {step.__name__}: {error}") from None
        if not changed:
            return


__all__ = [
    "FINAL",
    "LATE",
    "LEGALIZE",
    "PIPELINES",
    "ValidationError",
    "cancel_byte_swaps",
    "carry_accumulators",
    "drop_unreachable_blocks",
    "eliminate_bounds_checks",
    "eliminate_dead_code",
    "eliminate_dead_frame_stores",
    "eliminate_redundant_casts",
    "fold_branches",
    "fold_constants",
    "fold_packet_checks",
    "forward_frame_stores",
    "fuse_compare_branches",
    "legalize",
    "merge_blocks",
    "optimize",
    "propagate_copies",
    "read_packet_copies_in_place",
    "run_pipeline",
    "unroll_loops",
    "validate",
]
