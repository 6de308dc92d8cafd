"""Loops after the loop passes (unrolling, accumulators in registers): each
form loads, the kernel agrees with host mode at O1 and O0, and the passes
did what they claim on it (one ``may_goto`` per unrolled loop, the
accumulator's loads gone from the loop). These are the shapes whose
verification the safety arguments of docs/compiler.md are about: an
accumulator of every width and signedness, updated by every operation the
pass keeps in a register, next to forms it must leave in the frame."""

from __future__ import annotations

import copy

import pytest

from pykex.bpf.codegen import load
from pykex.compiler import Compilation
from pykex.ir.nodes import BinOp, Branch, Function, Load, LoopBack
from pykex.ir.passes import optimize
from pykex.ir.passes.loops import UNROLL_FACTOR, find_loops
from pykex.lang import compile_to_ir
from pykex.testing.progen import differential

pytestmark = pytest.mark.kernel

PACKETS = [
    bytes(range(64)),
    bytes(14),
    bytes(0xFF - i % 256 for i in range(301)),
    bytes((i * 37) % 256 for i in range(1500)),
]

HEADER = """\
from pykex import XDP_DROP, XDP_PASS, ArrayMap, XdpContext, xdp
from pykex import u8, u16, u32, u64, i8, i16, i32, i64

result = ArrayMap[u64](max_entries=4)
"""


def accumulating(ty: str, op: str, step: int = 1) -> str:
    return HEADER + f"""
@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    total: {ty} = {ty}(3)
    for i in range(0, len(ctx.packet), {step}):
        total {op}= {ty}(ctx.packet[i])
    result[0] = u64({ty}(total))
    return XDP_PASS
"""


SHAPES = {
    # the accumulator is compared inside the loop: it stays in the frame
    "compared": HEADER + """
@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    total: u32 = 0
    for i in range(len(ctx.packet)):
        total += ctx.packet[i]
        if total > 5000:
            return XDP_DROP
    result[0] = u64(total)
    return XDP_PASS
""",
    # the accumulator is reset on one path: not only updates write it
    "reset": HEADER + """
@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    total: u16 = 0
    for i in range(len(ctx.packet)):
        total += ctx.packet[i]
        if ctx.packet[i] == 7:
            total = 0
    result[0] = u64(total)
    return XDP_PASS
""",
    # two accumulators and a counter used as an offset, with a break
    "two_and_break": HEADER + """
@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    odd: u32 = 0
    mixed: u64 = 0
    n = len(ctx.packet)
    for i in range(n):
        if ctx.packet[i] == 0xFE:
            break
        odd += ctx.packet[i] & 1
        mixed ^= u64(ctx.packet[i]) << 3
    result[0] = u64(odd)
    result[1] = mixed
    return XDP_PASS
""",
    # a while loop with continue: several back edges
    "while_continue": HEADER + """
@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    i: u32 = 0
    total: i32 = -5
    while i < len(ctx.packet):
        i += 1
        if ctx.packet[i - 1] < 100:
            continue
        total -= i32(ctx.packet[i - 1])
    result[0] = u64(u32(total))
    return XDP_PASS
""",
    # nested loops: only the inner one is unrolled and keeps its accumulator
    "nested": HEADER + """
@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    total: u32 = 0
    rows = len(ctx.packet) // 16
    for row in range(rows):
        line: u16 = 0
        for column in range(16):
            line += ctx.packet[row * 16 + column]
        total += line
    result[0] = u64(total)
    return XDP_PASS
""",
    # a helper call in the body: the frame may be written, nothing is carried
    "helper_call": HEADER + """
@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    total: u64 = 0
    for i in range(len(ctx.packet) & 63):
        result[1] = u64(i)
        total += ctx.packet[i]
    result[0] = total
    return XDP_PASS
""",
}


def optimized(source: str) -> Function:
    module = copy.deepcopy(compile_to_ir(source, "loop.py"))
    optimize(module, "O1")
    return module.programs[0].function


def assert_agrees(source: str) -> None:
    outcome = differential(source, PACKETS, filename="loop.py")
    assert outcome.accepted, "\n".join(outcome.diagnostics)
    assert outcome.loaded and not outcome.problems, "\n".join(outcome.problems) + source


def carried(function: Function) -> list[BinOp]:
    """The updates the accumulator pass made: ``v = v <op> x``."""
    return [
        i for b in function.blocks for i in b.instrs
        if isinstance(i, BinOp) and i.dst is i.a
    ]  # fmt: skip


@pytest.mark.parametrize("ty", ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"])
@pytest.mark.parametrize("op", ["+", "-", "^"])
def test_accumulators_of_every_type_stay_in_a_register(ty: str, op: str) -> None:
    source = accumulating(ty, op)
    function = optimized(source)
    updates = carried(function)
    if op == "^" and ty in ("i8", "i16"):  # left in the frame (see _updates)
        assert updates == []
        assert_agrees(source)
        return
    assert len(updates) == UNROLL_FACTOR, function
    assert all(u.ty.bits == int(ty[1:]) for u in updates)
    (loop,) = find_loops(function)
    slot_loads = [
        i for label in loop.blocks for i in function.block(label).instrs
        if isinstance(i, Load) and not i.base.hint.startswith("pkt")
    ]  # fmt: skip
    # The loop reads the frame for its counter and end only.
    assert len(slot_loads) == 2, function
    assert_agrees(source)


def test_a_step_above_one_unrolls_and_agrees() -> None:
    assert_agrees(accumulating("u32", "+", step=3))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_loop_shapes_load_and_agree(name: str) -> None:
    assert_agrees(SHAPES[name])


def test_what_stays_in_the_frame() -> None:
    assert carried(optimized(SHAPES["compared"])) == []
    assert carried(optimized(SHAPES["reset"])) == []
    assert carried(optimized(SHAPES["helper_call"])) == []
    assert len(carried(optimized(SHAPES["two_and_break"]))) == 2 * UNROLL_FACTOR


def test_unrolled_loops_check_the_budget_once_per_group() -> None:
    function = optimized(SHAPES["nested"])
    back_edges = [b for b in function.blocks if isinstance(b.terminator, LoopBack)]
    assert len(back_edges) == 2  # the outer loop's and the unrolled inner loop's
    loops = find_loops(function)
    assert len(loops) == 2
    inner = min(loops, key=lambda loop: len(loop.blocks))
    # four copies of the inner body, each with its own exit test
    exits = [
        label for label in inner.blocks
        if isinstance(term := function.block(label).terminator, Branch)
        and not {term.then, term.orelse} <= set(inner.blocks)
    ]  # fmt: skip
    assert len(exits) == UNROLL_FACTOR


@pytest.mark.parametrize(
    "source",
    [accumulating(ty, "+") for ty in ("u8", "i16", "u32", "i64")] + list(SHAPES.values()),
)
def test_loops_verify_in_one_pass(source: str) -> None:
    """A loop whose carried state the verifier could not match at its
    ``may_goto`` would be walked once per iteration of its own: thousands
    of instructions for these packets' loops, not a few times the code."""
    with load(Compilation("loop.py", source).compiled) as live:
        info = live.programs["prog"].info()
    assert info.verified_insns < 3 * info.xlated_insns
