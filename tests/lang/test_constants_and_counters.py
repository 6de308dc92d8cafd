"""Tuple constants as lookup tables, counters of literal ranges, ``~3`` masks and
``ord("A")``, in the kernel and in host mode."""

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
from pykex import XDP_PASS, ArrayMap, XdpContext, u8, u16, u32, u64, xdp

WEIGHTS = (1, 1, 2, 3, 5, 8)
PORTS = (u16(80), u16(443), u16(8080))
OFFSETS = (-2, 0, 7)
COUNT = len(WEIGHTS)
THIRD = WEIGHTS[2]
LAST = WEIGHTS[-1]
LETTER_A = ord("A")

results = ArrayMap[u64](max_entries=8)
slots = ArrayMap[u32](max_entries=16)


@xdp(on_error=XDP_PASS)
def lookup(ctx: XdpContext) -> int:
    i = u32(ctx.packet[0])
    results[0] = WEIGHTS[i]
    results[1] = u64(PORTS[i % len(PORTS)])
    results[2] = u64(OFFSETS[i % 3] + 10)
    results[3] = COUNT * 100 + THIRD * 10 + LAST
    return XDP_PASS


@xdp(on_error=XDP_PASS)
def membership(ctx: XdpContext) -> int:
    port = ctx.packet.read(0, u16)
    if port in PORTS:
        return 1
    return 0


@xdp(on_error=XDP_PASS)
def counters(ctx: XdpContext) -> int:
    total: u32 = 0
    for i in range(16):
        slots[i] = i * 2
        total += i
    for i in range(3, 0, -1):
        total += WEIGHTS[i]
    return total


@xdp(on_error=XDP_PASS)
def masks(ctx: XdpContext) -> int:
    x = u32(len(ctx.packet))
    y = u8(ctx.packet[0])
    results[4] = x & ~3
    results[5] = y | -16
    x &= ~1
    results[6] = x
    if ctx.packet[1] == ord("B"):
        results[7] = LETTER_A
    return XDP_PASS


@xdp(on_error=XDP_PASS)
def chooses(ctx: XdpContext) -> int:
    flag = u32(ctx.packet[0])
    return flag * 10 + (1 if flag > 3 else 0)
"""


def _open(mode):
    return mode(Compilation("ext.py", SOURCE))


@pytest.mark.parametrize("mode", MODES)
def test_tuple_items_read_at_run_time_indexes(mode) -> None:
    with _open(mode) as ext:
        for i, (weight, port, offset) in enumerate([(1, 80, -2), (1, 443, 0), (2, 8080, 7),
                                                     (3, 80, -2)]):
            result = ext.lookup.test_run(bytes([i]) + bytes(19))
            assert result.exception is None
            assert [ext.results[k] for k in range(4)] == [weight, port, offset + 10, 600 + 20 + 8]


@pytest.mark.parametrize("mode", MODES)
def test_an_index_past_the_tuple_raises_index_error(mode) -> None:
    with _open(mode) as ext:
        result = ext.lookup.test_run(bytes([6]) + bytes(19))
        assert "IndexError" in str(result.exception)
        assert "index 6 out of range for length 6" in str(result.exception)


@pytest.mark.parametrize("mode", MODES)
def test_membership_in_a_tuple_constant(mode) -> None:
    with _open(mode) as ext:
        assert ext.membership.test_run((443).to_bytes(2, "little") + bytes(18)).retval == 1
        assert ext.membership.test_run((444).to_bytes(2, "little") + bytes(18)).retval == 0


@pytest.mark.parametrize("mode", MODES)
def test_literal_range_counters_take_the_type_of_their_use(mode) -> None:
    with _open(mode) as ext:
        assert ext.counters.test_run(bytes(20)).retval == 120 + 3 + 2 + 1
        assert [ext.slots[i] for i in range(16)] == [2 * i for i in range(16)]


@pytest.mark.parametrize("mode", MODES)
def test_negative_literals_in_bitwise_operators_and_ord(mode) -> None:
    with _open(mode) as ext:
        ext.masks.test_run(bytes([0x21, ord("B")]) + bytes(21))
        assert [ext.results[k] for k in range(4, 8)] == [20, 0xF1, 22, 65]


@pytest.mark.parametrize("mode", MODES)
def test_a_choice_between_literals_takes_the_type_of_its_use(mode) -> None:
    with _open(mode) as ext:
        assert ext.chooses.test_run(bytes([5]) + bytes(19)).retval == 51
        assert ext.chooses.test_run(bytes([2]) + bytes(19)).retval == 20


def _first_error(lines: str) -> str:
    source = ("from pykex import XDP_PASS, ArrayMap, XdpContext, u8, u16, u32, xdp\n"
              f"{lines}\n")
    diagnostics = check(source, "ext.py")
    assert diagnostics, "the program was accepted"
    return diagnostics[0].message


def _in_program(body: str, before: str = "T = (1, 2, 300)") -> str:
    return _first_error(f"{before}\nm = ArrayMap[u8](max_entries=4)\n@xdp()\n"
                        f"def prog(ctx: XdpContext) -> int:\n    {body}\n    return XDP_PASS")


@pytest.mark.parametrize(("lines", "message"), [
    ("T = ()", "a tuple constant needs at least one item"),
    ("T = (1, True)", "tuple constants hold integers only"),
    ("T = (u8(1), u16(2))", "tuple T mixes items of types u16 and u8"),
    ("T = (u8(1), 256)", "256 does not fit in u8, the type of the other items of T"),
    ("T = (-1, 1 << 63)", "the items of T do not fit one 64-bit type"),
    ("T = (1, 2)\nX = T[2]", "index 2 is out of range for tuple T of 2 items"),
    ("T = (1, 2)\nX = T + 1", "T is a tuple, not an integer"),
    ("X = ord('AB')", "ord() takes a one-character string or bytes literal"),
])
def test_module_level_mistakes(lines: str, message: str) -> None:
    assert _first_error(lines) == message


@pytest.mark.parametrize(("body", "message"), [
    ("m[0] = T[u32(ctx.packet[0])]", "this integer in 1..300 does not fit in u8"),
    ("x = T[0:2]", "tuple constants cannot be sliced"),
    ("for t in T:\n        pass", "for loops iterate over range(...) only"),
    ("x = T[5]", "index 5 is out of range for tuple T of 3 items"),
])
def test_mistakes_in_code(body: str, message: str) -> None:
    assert _in_program(body) == message


def test_a_counter_assigned_elsewhere_keeps_the_default_type() -> None:
    """Only a counter nothing else assigns takes its type from its uses."""
    message = _in_program("for i in range(4):\n        m[i] = 0\n    i = 7")
    assert message == "cannot use a i64 value as u32"
