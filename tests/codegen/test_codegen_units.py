"""Backend pieces that need no kernel: moves, labels, names, allocation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pykex.bpf import dsl
from pykex.bpf.codegen import generate
from pykex.bpf.codegen.regalloc import CALLEE_SAVED, FrameSlot, allocate, intervals
from pykex.bpf.codegen.runtime import frame_map_name
from pykex.bpf.codegen.select import FunctionSelector, _Label, _resolve_labels
from pykex.bpf.insn import R0, R1, R2, R3, R4, R5, R6, R8, R9
from pykex.ir.nodes import U64, BinOp, Call, Load, PacketLen, PacketPtr, Raise, Return

from .harness import FunctionBuilder, module

REGISTERS = [R1, R2, R3, R4, R5, R8, R9]


@given(
    st.permutations(REGISTERS).flatmap(
        lambda perm: st.lists(st.sampled_from(REGISTERS), min_size=5, max_size=5).map(
            lambda sources: dict(zip(perm[:5], sources, strict=True))
        )
    )
)
def test_parallel_move_acts_as_simultaneous_assignment(moves) -> None:
    moves = {t: s for t, s in moves.items() if t != s}
    selector = FunctionSelector.__new__(FunctionSelector)
    selector.out, selector.source = [], None
    selector.parallel_move(moves)
    state = {r: f"v{int(r)}" for r in [R0, *REGISTERS]}
    for insn in selector.out:
        state[insn.dst] = state[insn.src]
    for target, source in moves.items():
        assert state[target] == f"v{int(source)}"


def test_labels_sharing_an_instruction_become_aliases() -> None:
    stream = [
        dsl.ja("b"), _Label("a"), _Label("b"), dsl.exit(),
    ]
    out = _resolve_labels(stream)
    assert [i.label for i in out] == [None, "a"]
    assert out[0].target == "a"


def test_frame_names_fit_the_kernel_and_stay_unique() -> None:
    first = frame_map_name("averyveryverylongname", set())
    assert first == "averyvery.frame" and len(first) == 15
    second = frame_map_name("averyveryverylongname", {first})
    assert second == "averyver.frame1"
    assert frame_map_name("fw", set()) == "fw.frame"


def test_values_live_across_calls_avoid_clobbered_registers() -> None:
    f = FunctionBuilder("calls")
    p = f.temp("p", pointer=True)
    values = [f.temp(f"v{i}") for i in range(4)]
    f(PacketPtr(p, 0, 32, "short"))
    for i, v in enumerate(values):
        f(Load(v, p, 8 * i, U64))
    now, acc = f.temp("now"), f.temp("acc")
    f(Call(now, "bpf_ktime_get_ns", []), BinOp(acc, "add", now, values[0], U64))
    for v in values[1:]:
        f(BinOp(acc, "add", acc, v, U64))
    f(Return(acc))
    f.label("short")
    f(Return(1))
    allocation = allocate(f.function)
    crossing = [i for i in intervals(f.function, set()) if i.crosses_call]
    assert {i.temp for i in crossing} == set(values)
    for interval in crossing:
        location = allocation.location(interval.temp)
        assert location in CALLEE_SAVED or isinstance(location, FrameSlot)
    assert allocation.spill_size == 16  # two of the four values spilled, into the frame
    assert allocation.stack_size == 8  # the stack keeps pointers only


def test_generate_adds_runtime_maps_and_sites() -> None:
    f = FunctionBuilder("tiny")
    f(Return(2))
    compiled = generate(module((f, "xdp", 0)))
    names = [m.name for m in compiled.maps]
    assert names == ["tiny.frame", ".errors", ".errors_lost", ".exc_count"]
    assert compiled.map("tiny.frame").value_size == 40  # no locals, the error record
    g = FunctionBuilder("wide", frame_size=13)
    g(Return(2))
    assert generate(module((g, "xdp", 0))).map("wide.frame").value_size == 16 + 40
    assert compiled.sites == []
    assert compiled.programs[0].instructions[-1].is_exit


def test_code_that_needs_no_frame_does_not_look_it_up() -> None:
    f = FunctionBuilder("tiny")
    f(Return(2))
    (program,) = generate(module((f, "xdp", 0))).programs
    assert [(i.opcode, i.dst, i.imm) for i in program.instructions] == [
        (i.opcode, i.dst, i.imm) for i in (dsl.mov64(R0, 2), dsl.exit())
    ]
    g = FunctionBuilder("counts", frame_size=8)
    x = g.temp("x")
    g(PacketLen(x), Return(x))
    (program,) = generate(module((g, "xdp", 0))).programs
    assert not any(i.is_call for i in program.instructions)  # r6 = ctx, no frame
    assert program.instructions[0].dst == R6
    h = FunctionBuilder("raises")
    h(Raise("ValueError", "no"))
    (program,) = generate(module((h, "xdp", 0))).programs
    first_call = next(i for i in program.instructions if i.is_call)
    assert first_call.imm == dsl.call_helper("bpf_map_lookup_elem").imm  # the frame, first
