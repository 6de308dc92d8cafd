"""What an expression evaluates to while a function is lowered.

Scalars and references are IR values (a temp or a constant); structs and
arrays are places in memory. A :class:`Place` says where: a frame slot, an
offset from a reference (a map value), or a module global.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pykex.ir.nodes import Temp, Value
from pykex.lang.types import Type


@dataclass(frozen=True)
class Place:
    kind: str  # "frame", "ptr" or "global"
    offset: int
    temp: Temp | None = None  # the reference, for "ptr"
    map: str | None = None  # the section map, for "global"; the map a "ptr" points into

    def at(self, delta: int) -> Place:
        return Place(self.kind, self.offset + delta, self.temp, self.map)


@dataclass
class Operand:
    """The result of an expression: its type and how to reach its value."""

    type: Type
    value: Value | None = None  # scalars, bools, references, literals
    place: Place | None = None  # structs and arrays
    fresh: bool = False  # the place is a temporary a new local may adopt
    extra: dict[str, object] = field(default_factory=dict)  # packet slices: offset
    node: object = None  # the expression it came from, for messages about it


@dataclass
class Local:
    """A local variable of one inlined function instance."""

    type: Type
    slot: int | None = None  # frame offset of its value
    temp: Temp | None = None  # references live in a pointer temp
    place: Place | None = None  # struct parameters alias the caller's value
    parameter: bool = False


@dataclass(frozen=True)
class State:
    """What the checker knows at a point: locals definitely assigned, and
    optional references known not to be None."""

    assigned: frozenset[str] = frozenset()
    narrowed: frozenset[str] = frozenset()

    def assign(self, name: str, narrowed: bool) -> State:
        nar = self.narrowed | {name} if narrowed else self.narrowed - {name}
        return State(self.assigned | {name}, nar)

    def narrow(self, names: frozenset[str]) -> State:
        return State(self.assigned, self.narrowed | names)


def join(*states: State | None) -> State | None:
    """The state where paths meet (None: no path reaches)."""
    live = [s for s in states if s is not None]
    if not live:
        return None
    assigned, narrowed = live[0].assigned, live[0].narrowed
    for s in live[1:]:
        assigned &= s.assigned
        narrowed &= s.narrowed
    return State(assigned, narrowed)
