"""The passes that serve loops and branches, as text before/after: fused
compare-and-branch, merged blocks, dead frame stores, unrolling and
accumulators kept in a register. Each also runs in the interpreter, which
must compute what it computed before the pass."""

from __future__ import annotations

import copy

from pykex.ir.interp import Interpreter
from pykex.ir.nodes import (
    U8,
    U32,
    U64,
    BinOp,
    Branch,
    Call,
    Compare,
    FrameAddr,
    Jump,
    Load,
    LoopBack,
    ModuleIR,
    PacketLen,
    PacketPtr,
    ProgramIR,
    Raise,
    Return,
    Store,
)
from pykex.ir.passes import (
    carry_accumulators,
    eliminate_dead_frame_stores,
    fuse_compare_branches,
    merge_blocks,
    unroll_loops,
    validate,
)
from pykex.ir.passes.loops import UNROLL_FACTOR, find_loops

from .test_passes import Builder, text


def run(function, packet: bytes) -> int:
    module = ModuleIR("t.py", "", programs=[ProgramIR("f", "xdp", function, on_error=2)])
    return Interpreter(module).run("f", packet).retval


def test_a_branch_on_a_comparison_branches_on_its_operands() -> None:
    b = Builder()
    x, c, y, d = b.t("x"), b.t("c"), b.t("y"), b.t("d")
    b.block("entry", PacketLen(x), Compare(c, "lt", x, 20, False), Branch("eq", c, 0, False,
                                                                           "big", "small"))
    b.block("big", BinOp(y, "xor", x, 0x1234, U64), Branch("ne", y, 0, False, "other", "same"))
    b.block("small", Compare(d, "ge", x, 3, True), Return(d))  # a result used otherwise stays
    b.block("other", Return(1)).block("same", Return(0))
    assert fuse_compare_branches(b.function)
    shown = str(b.function)
    assert "branch.ge %x1, 20 ? big : small" in shown  # eq 0: the inverse comparison
    assert "branch.ne %x1, 4660 ? other : same" in shown
    assert "%d4 = cmp.ge.s %x1, 3" in shown  # a result used otherwise stays


def test_a_comparison_whose_operand_changes_before_the_branch_stays() -> None:
    b = Builder()
    x, c = b.t("x"), b.t("c")
    b.block("entry", PacketLen(x), Compare(c, "lt", x, 20, False), PacketLen(x),
            Branch("ne", c, 0, False, "a", "b"))
    b.block("a", Return(1)).block("b", Return(0))
    assert not fuse_compare_branches(b.function)


def test_blocks_entered_from_one_jump_merge() -> None:
    b = Builder()
    x = b.t("x")
    b.block("entry", PacketLen(x), Jump("middle"))
    b.block("middle", Jump("last"))
    b.block("twice", Jump("last"))  # unreachable, but it enters last too
    b.block("last", Return(x))
    assert merge_blocks(b.function)
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            %x1 = packet.len
            jump last
        twice:
            jump last
        last:
            return %x1
    """)


def test_stores_no_path_reads_are_dropped() -> None:
    b = Builder()
    fp, x, key, ref = b.t("fp", True), b.t("x"), b.t("key", True), b.t("ref", True)
    b.block(
        "entry",
        FrameAddr(fp, 0),
        Store(fp, 0, 1, U32),  # overwritten below before anything reads it
        Store(fp, 4, 2, U32),  # read on the "a" path
        Store(fp, 0, 3, U32),
        Load(x, fp, 0, U32),
        Store(fp, 8, 4, U32),  # read by the helper through its key pointer
        FrameAddr(key, 8),
        Branch("eq", x, 3, False, "a", "b"),
    )
    b.block("a", Load(x, fp, 4, U32), Return(x))
    b.block("b", Call(ref, "bpf_map_lookup_elem", [0, key]), Store(fp, 12, 5, U32), Return(0))
    before = copy.deepcopy(b.function)
    assert eliminate_dead_frame_stores(b.function)
    kept = [str(i) for blk in b.function.blocks for i in blk.instrs if isinstance(i, Store)]
    assert kept == [
        "store.u32 [%fp1 + 4], 2", "store.u32 [%fp1 + 0], 3", "store.u32 [%fp1 + 8], 4",
    ]
    assert run(b.function, bytes(20)) == run(before, bytes(20))


def counting_loop(b: Builder, accumulate: str = "add") -> None:
    """``total = 0; for i in range(len): total <op>= packet[i]; return total``,
    with ``total`` at frame + 0 and ``i`` at frame + 8, as the front end lays it out."""
    fp, n, i, t, p, byte, s, nxt, out = (b.t(h, h in ("fp", "p")) for h in
                                         ("fp", "n", "i", "t", "p", "byte", "s", "next", "out"))
    b.block("entry", FrameAddr(fp, 0), PacketLen(n), Store(fp, 0, 0, U32), Store(fp, 8, 0, U64),
            Jump("head"))
    b.block("head", Load(i, fp, 8, U64), Branch("lt", i, n, False, "body", "done"))
    b.block(
        "body",
        Load(t, fp, 0, U32),
        PacketPtr(p, i, 1, "short"),
        Load(byte, p, 0, U8),
        BinOp(s, accumulate, t, byte, U32),
        Store(fp, 0, s, U32),
        BinOp(nxt, "add", i, 1, U64),
        Store(fp, 8, nxt, U64),
        LoopBack("head", "exhausted"),
    )
    b.block("done", Load(out, fp, 0, U32), Return(out))
    b.block("short", Raise("IndexError", "short"))
    b.block("exhausted", Raise("TerminationError", "loop budget exhausted"))


def test_unrolling_keeps_one_budget_check_per_group() -> None:
    b = Builder()
    counting_loop(b)
    before = copy.deepcopy(b.function)
    assert unroll_loops(b.function)
    validate(b.function)
    (loop,) = find_loops(b.function)
    assert len(loop.blocks) == 2 * UNROLL_FACTOR
    back_edges = [blk for blk in b.function.blocks if isinstance(blk.terminator, LoopBack)]
    assert [blk.terminator.target for blk in back_edges] == ["head"]
    assert b.function.block("body").terminator.target == "head_2"  # type: ignore[attr-defined]
    # each copy has temps of its own; the frame pointer is shared
    assert "%i3" not in str(b.function.block("body_2"))
    assert "%fp1" in str(b.function.block("body_2"))
    for length in (0, 1, 3, 4, 5, 9):
        packet = bytes(range(40))[: max(length, 14)]
        assert run(b.function, packet) == run(before, packet)


def test_accumulators_stay_in_one_register_each() -> None:
    b = Builder()
    counting_loop(b)
    before = copy.deepcopy(b.function)
    assert carry_accumulators(b.function)
    validate(b.function)
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            %fp1 = frame + 0
            %n2 = packet.len
            store.u32 [%fp1 + 0], 0
            store.u64 [%fp1 + 8], 0
            %fp11 = frame + 0
            %acc10 = load.u32 [%fp11 + 0]
            %fp13 = frame + 0
            %acc12 = load.u64 [%fp13 + 8]
            jump head
        head:
            %i3 = load.u64 [%fp1 + 8]
            branch.lt %i3, %n2 ? body : done
        body:
            %p5 = packet + %i3 [1] else short
            %byte6 = load.u8 [%p5 + 0]
            %acc10 = add.u32 %acc10, %byte6
            store.u32 [%fp1 + 0], %acc10
            %acc12 = add.u64 %acc12, 1
            store.u64 [%fp1 + 8], %acc12
            loop head else exhausted
        done:
            %out9 = load.u32 [%fp1 + 0]
            return %out9
        short:
            raise IndexError 'short' ()
        exhausted:
            raise TerminationError 'loop budget exhausted' ()
    """)
    for length in (14, 15, 40):
        packet = bytes(range(200, 256))[:length]
        assert run(b.function, packet) == run(before, packet)


def test_a_counter_is_carried_but_compared_as_loaded_from_the_frame() -> None:
    b = Builder()
    counting_loop(b)
    carry_accumulators(b.function)
    shown = str(b.function)
    assert "%acc12 = add.u64 %acc12, 1" in shown
    # the comparison and the packet offset read the counter the frame holds
    assert "%i3 = load.u64 [%fp1 + 8]" in shown
    assert "branch.lt %i3, %n2" in shown and "packet + %i3" in shown


def test_an_accumulator_read_otherwise_stays_in_the_frame() -> None:
    b = Builder()
    counting_loop(b, accumulate="or")  # or narrows: not an update the pass keeps
    carry_accumulators(b.function)
    assert "or.u32 %t4, %byte6" in str(b.function)
    b = Builder()
    counting_loop(b)
    body = b.function.block("body")
    s = body.instrs[3].dst  # type: ignore[attr-defined]
    body.instrs.insert(5, Store(body.instrs[0].base, 12, s, U32))  # type: ignore[attr-defined]
    body.instrs.insert(6, Branch("eq", s, 0, False, "done", "more"))
    tail = body.instrs[7:]
    body.instrs[6:] = [body.instrs[6]]
    b.block("more", *tail)
    carry_accumulators(b.function)
    assert "add.u32 %t4, %byte6" in str(b.function)  # the updated value is compared
