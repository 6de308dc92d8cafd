"""Program arrays and tail calls, in the kernel and in host mode: user space fills
the array with the extension's programs; an empty slot lets the caller go on."""

from __future__ import annotations

import pytest

from pykex.compiler import Compilation
from pykex.lang import check
from pykex.runtime import load, load_host

MODES = [
    pytest.param(load, id="kernel", marks=pytest.mark.kernel),
    pytest.param(load_host, id="host"),
]

SOURCE = """
from pykex import XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, ArrayMap, ProgramArray, XdpContext
from pykex import tail_call, u32, u64, xdp

stages = ProgramArray(max_entries=4)
runs = ArrayMap[u64](max_entries=4)


def dispatch(ctx: XdpContext, stage: u32) -> u32:
    tail_call(ctx, stages, stage)
    runs[1] += 1  # reached only when the slot is empty
    return XDP_PASS


@xdp(on_error=XDP_PASS)
def dispatcher(ctx: XdpContext) -> int:
    runs[0] += 1
    return dispatch(ctx, u32(ctx.packet[0]))


@xdp(on_error=XDP_PASS)
def drop(ctx: XdpContext) -> int:
    runs[2] += 1
    return XDP_DROP


@xdp(on_error=XDP_ABORTED)
def reads_too_far(ctx: XdpContext) -> int:
    return ctx.packet[100]


@xdp(on_error=XDP_PASS)
def bounce(ctx: XdpContext) -> int:
    if ctx.packet[1] == 0xFF:
        return XDP_TX
    runs[3] += 1
    tail_call(ctx, stages, 3)
    return XDP_PASS
"""


def _open(mode):
    return mode(Compilation("ext.py", SOURCE))


def _runs(ext) -> list[int]:
    return [ext.runs[i] for i in range(4)]


@pytest.mark.parametrize("mode", MODES)
def test_an_empty_slot_lets_the_caller_go_on(mode) -> None:
    with _open(mode) as ext:
        assert ext.dispatcher.test_run(bytes([0]) + bytes(19)).retval == 2
        assert ext.dispatcher.test_run(bytes([9]) + bytes(19)).retval == 2  # past the array
        assert _runs(ext) == [2, 2, 0, 0]


@pytest.mark.parametrize("mode", MODES)
def test_a_filled_slot_runs_that_program_whose_verdict_is_the_callers(mode) -> None:
    with _open(mode) as ext:
        ext.stages[1] = ext.drop
        ext.stages[2] = ext.bounce
        assert ext.dispatcher.test_run(bytes([1]) + bytes(19)).retval == 1
        assert _runs(ext) == [1, 0, 1, 0]
        assert ext.dispatcher.test_run(bytes([2, 0xFF]) + bytes(18)).retval == 3
        assert _runs(ext) == [2, 0, 1, 0]
        assert list(ext.stages.keys()) == [1, 2]
        del ext.stages[1]
        assert ext.dispatcher.test_run(bytes([1]) + bytes(19)).retval == 2


@pytest.mark.parametrize("mode", MODES)
def test_a_chain_of_tail_calls_stops_after_33(mode) -> None:
    with _open(mode) as ext:
        ext.stages[3] = ext.bounce  # bounce jumps to slot 3: itself
        assert ext.bounce.test_run(bytes(20)).retval == 2
        assert ext.runs[3] == 34  # the first run and 33 tail calls


@pytest.mark.parametrize("mode", MODES)
def test_an_exception_after_the_jump_is_the_runs_and_that_programs(mode) -> None:
    with _open(mode) as ext:
        ext.stages[0] = ext.reads_too_far
        result = ext.dispatcher.test_run(bytes(20))
        assert result.retval == 0  # the on_error of the program jumped to
        assert result.exception is not None and result.exception.program == "reads_too_far"
        assert "packet offset 100 + 1 > length 20" in str(result.exception)
        assert ext.exceptions()["reads_too_far"] == 1


def _error(body: str, declarations: str = "") -> str:
    source = ("from pykex import XDP_PASS, ArrayMap, ProgramArray, RingBuffer, SpinLock, "
              "Struct, XdpContext, tail_call, u32, u64, xdp\n\n"
              "class Locked(Struct):\n    lock: SpinLock\n    n: u64\n\n"
              "class Event(Struct):\n    n: u64\n\n"
              "stages = ProgramArray(max_entries=2)\nlocked = ArrayMap[Locked](max_entries=1)\n"
              f"events = RingBuffer(size=4096)\n{declarations}\n@xdp()\n"
              f"def prog(ctx: XdpContext) -> int:\n    {body}\n    return XDP_PASS\n")
    diagnostics = check(source, "ext.py")
    assert diagnostics, "the program was accepted"
    return diagnostics[0].message


@pytest.mark.parametrize(("body", "message"), [
    ("tail_call(ctx, locked, 0)", "tail_call() jumps through a ProgramArray"),
    ("tail_call(stages, 0)", "expected tail_call(ctx, programs, index)"),
    ("tail_call(0, stages, 0)", "tail_call() takes the program's ctx first"),
    ("x = stages[0]", "a ProgramArray cannot be indexed in code"),
    ("v = locked[0]\n    with v.lock:\n        tail_call(ctx, stages, 0)",
     "this calls the kernel helper bpf_tail_call, which is not allowed while a spin lock "
     "is held"),
    ("with events.reserve(Event) as e:\n        tail_call(ctx, stages, 0)",
     "tail_call() cannot leave a reserved record behind"),
])
def test_tail_call_mistakes(body: str, message: str) -> None:
    assert _error(body) == message


def test_program_arrays_need_max_entries() -> None:
    assert _error("pass", "more = ProgramArray()") == "ProgramArray needs max_entries=N"
