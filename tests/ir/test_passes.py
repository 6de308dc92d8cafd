"""Each IR pass, shown as the function's text before and after."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykex.ir.interp import Interpreter
from pykex.ir.nodes import (
    I8,
    U8,
    U32,
    U64,
    Assign,
    BinOp,
    Block,
    Branch,
    Call,
    Cast,
    Compare,
    FrameAddr,
    Function,
    Jump,
    Load,
    ModuleIR,
    PacketPtr,
    ProgramIR,
    Return,
    Store,
    UnOp,
)
from pykex.ir.passes import (
    ValidationError,
    eliminate_bounds_checks,
    eliminate_dead_code,
    fold_branches,
    fold_constants,
    optimize,
    propagate_copies,
    validate,
)


def text(source: str) -> str:
    return textwrap.dedent(source).strip()


class Builder:
    def __init__(self) -> None:
        self.function = Function("f", frame_size=16)

    def t(self, hint: str = "t", pointer: bool = False):
        return self.function.new_temp(hint, pointer)

    def block(self, label: str, *instrs) -> Builder:
        self.function.blocks.append(Block(label, list(instrs)))
        return self


def test_fold_constants_uses_run_time_semantics() -> None:
    b = Builder()
    x, y, z, w, c = b.t("x"), b.t("y"), b.t("z"), b.t("w"), b.t("c")
    b.block(
        "entry",
        BinOp(x, "add", 200, 100, U8),
        BinOp(y, "div", -7, 2, I8),
        UnOp(z, "neg", 1, U32),
        Cast(w, 300, I8),
        Compare(c, "lt", -1, 1, False),
        Return(x),
    )
    fold_constants(b.function)
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            %x1 = 44
            %y2 = -4
            %z3 = 4294967295
            %w4 = 44
            %c5 = 0
            return %x1
    """)


def test_propagate_copies_within_block_and_constants_everywhere() -> None:
    b = Builder()
    k, a, p, q = b.t("k"), b.t("a"), b.t("p"), b.t("q")
    b.block(
        "entry",
        Assign(k, 5),
        Call(a, "bpf_get_prandom_u32", []),
        Assign(p, a),
        BinOp(q, "add", p, k, U64),
        Assign(a, 1),  # a changes: later uses of p keep p
        BinOp(q, "add", p, q, U64),
        Jump("next"),
    ).block("next", BinOp(q, "mul", q, k, U64), Return(q))
    propagate_copies(b.function)
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            %k1 = 5
            %a2 = call bpf_get_prandom_u32()
            %p3 = %a2
            %q4 = add.u64 %a2, 5
            %a2 = 1
            %q4 = add.u64 %p3, %q4
            jump next
        next:
            %q4 = mul.u64 %q4, 5
            return %q4
    """)


def test_fold_branches_and_drop_unreachable_blocks() -> None:
    b = Builder()
    x = b.t("x")
    b.block("entry", Branch("gt", 3, 2, False, "yes", "no")).block(
        "yes", Assign(x, 1), Branch("eq", x, 0, False, "done", "done")
    ).block("no", Return(0)).block("done", Return(x))
    assert fold_branches(b.function)
    assert eliminate_dead_code(b.function)
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            jump yes
        yes:
            %x1 = 1
            jump done
        done:
            return %x1
    """)


def test_dead_code_keeps_effects() -> None:
    b = Builder()
    fr, dead, deader, kept = b.t("fr", True), b.t("dead"), b.t("deader"), b.t("kept")
    b.block(
        "entry",
        FrameAddr(fr, 0),
        BinOp(dead, "add", 1, 2, U64),
        BinOp(deader, "mul", dead, 3, U64),
        Call(kept, "bpf_ktime_get_ns", []),
        Store(fr, 0, 7, U64),
        Return(0),
    )
    eliminate_dead_code(b.function)
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            %fr1 = frame + 0
            %kept4 = call bpf_ktime_get_ns()
            store.u64 [%fr1 + 0], 7
            return 0
    """)


def test_bounds_check_elimination() -> None:
    b = Builder()
    eth, ip, inner, far, after, v = (b.t(h, True) for h in ("eth", "ip", "in", "far", "aft", "v"))
    x = b.t("x")
    b.block(
        "entry",
        PacketPtr(eth, 0, 34, "short"),
        PacketPtr(ip, 14, 20, "short"),  # inside [0, 34): derived
        PacketPtr(inner, 0, 2, "short"),  # same start: a copy
        PacketPtr(far, 30, 8, "short"),  # reaches past 34: kept
        Load(x, ip, 9, U8),
        Call(v, "bpf_xdp_adjust_head", [x, 0]),  # the packet may move: forget
        PacketPtr(after, 14, 4, "short"),
        Return(x),
    ).block("short", Return(1))
    assert eliminate_bounds_checks(b.function)
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            %eth1 = packet + 0 [34] else short
            %ip2 = add.u64 %eth1, 14
            %in3 = %eth1
            %far4 = packet + 30 [8] else short
            %x7 = load.u8 [%ip2 + 9]
            %v6 = call bpf_xdp_adjust_head(%x7, 0)
            %aft5 = packet + 14 [4] else short
            return %x7
        short:
            return 1
    """)


def test_validator_rejects_broken_functions() -> None:
    b = Builder()
    ghost = b.t("ghost")
    b.block("entry", Return(ghost))
    with pytest.raises(ValidationError, match="never defined"):
        validate(b.function)
    b = Builder()
    b.block("entry", Jump("nowhere"))
    with pytest.raises(ValidationError, match="undefined label"):
        validate(b.function)
    b = Builder()
    b.block("entry", Return(0), Return(1))
    with pytest.raises(ValidationError, match="terminator before its end"):
        validate(b.function)
    b = Builder()
    b.block("entry", Assign(b.t(), 1))
    with pytest.raises(ValidationError, match="does not end with a terminator"):
        validate(b.function)


def test_o0_changes_nothing_and_o1_reaches_a_fixpoint() -> None:
    b = Builder()
    x, y = b.t("x"), b.t("y")
    b.block("entry", Assign(x, 2), BinOp(y, "shl", x, 3, U8), Branch("eq", y, 16, False,
                                                                   "a", "b"))
    b.block("a", Return(y)).block("b", Return(0))
    before = str(b.function)
    optimize(b.function, "O0")
    assert str(b.function) == before
    optimize(b.function, "O1")
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            return 16
    """)
    with pytest.raises(ValueError, match="unknown optimisation level"):
        optimize(b.function, "O9")


def random_program(ops: list[tuple[str, int, int]], inputs: tuple[int, int]) -> ModuleIR:
    """Straight-line code mixing constants and packet-loaded values."""
    f = Function("r", frame_size=8)
    p = f.new_temp("p", pointer=True)
    pool = [f.new_temp("in"), f.new_temp("in")]
    instrs = [PacketPtr(p, 0, 16, "short"), Load(pool[0], p, 0, U32), Load(pool[1], p, 4, U32)]
    for op, left, right in ops:
        dst = f.new_temp("v")
        a = pool[left % len(pool)] if left >= 0 else inputs[0]
        bval = pool[right % len(pool)] if right >= 0 else inputs[1]
        if op in ("div", "mod"):
            bval = (right % 7) + 1
        if op in ("shl", "shr"):
            bval = right % 40
        instrs.append(BinOp(dst, op, a, bval, U32))
        pool.append(dst)
    instrs += [Store(p, 8, pool[-1], U32), Return(2)]
    f.blocks = [Block("entry", instrs), Block("short", [Return(1)])]
    return ModuleIR("r.py", "", programs=[ProgramIR("r", "xdp", f, on_error=0)])


OPS = st.sampled_from(["add", "sub", "mul", "div", "mod", "and", "or", "xor", "shl", "shr"])


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(st.tuples(OPS, st.integers(-2, 20), st.integers(-2, 20)), min_size=1,
                 max_size=25),
    inputs=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    packet=st.binary(min_size=16, max_size=16),
)
def test_o1_preserves_meaning(ops, inputs, packet) -> None:
    plain = random_program(ops, inputs)
    optimised = random_program(ops, inputs)
    optimize(optimised, "O1")
    want = Interpreter(plain).run("r", packet)
    got = Interpreter(optimised).run("r", packet)
    assert (got.retval, got.packet) == (want.retval, want.packet)
