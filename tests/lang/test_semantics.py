"""Run-time meaning of the language, checked in host mode (the IR interpreter
runs exactly the IR the kernel gets)."""

from __future__ import annotations

import pytest

from pykex.ir.interp import Interpreter

from .helpers import compile_ok, raises, returns, source

# -- integers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("u8(250) + 10", 4),  # wraps around
        ("u8(3) - 5", 254),
        ("u16(300) * 300", 300 * 300 % 65536),
        ("u32(i32(-1))", 0xFFFFFFFF),  # conversions wrap
        ("u32(u8(u32(300)))", 44),
        ("u32(i8(u8(200)) + 100)", 44),  # -56 + 100
        ("u32(i32(-7) // 2 + 100)", 96),  # floor division: -4
        ("u32(i32(-7) % 2)", 1),  # Python's modulo takes the divisor's sign
        ("u32(i32(7) % -2 + 10)", 9),
        ("u32(17) // 5", 3),
        ("u32(1) << 31", 1 << 31),
        ("u32(1) << 32", 0),  # shifting out every bit gives 0
        ("u32(u8(1) << 9)", 0),
        ("u32(0x80000000) >> 31", 1),
        ("u32(i32(-8) >> 1)", 0xFFFFFFFC),  # arithmetic shift for signed types
        ("u32(u8(1) + u32(2))", 3),  # widening within unsigned
        ("u32(-u8(1))", 255),
        ("u32(~u8(0))", 255),
        ("u32(3 * 4 + 2 ** 3)", 20),  # constants fold with Python's rules
        ("ntohs(u16(0x1234))", 0x3412),
        ("ntohl(u32(0x12345678))", 0x78563412),
    ],
)
def test_integer_arithmetic(expression: str, expected: int) -> None:
    assert returns(f"x = {expression}\nreturn x") == expected


def test_division_by_zero_raises() -> None:
    assert raises("a = u32(ctx.ingress_ifindex)\nreturn u32(10) // a") == (
        "ZeroDivisionError: integer division or modulo by zero")
    assert raises("a = u32(0)\nreturn u32(10) % a").startswith("ZeroDivisionError")


def test_negative_shift_raises_value_error() -> None:
    assert raises("a = i32(-3)\nreturn u32(1) << a") == "ValueError: negative shift count -3"


def test_literal_takes_the_type_of_the_other_operand() -> None:
    # 200 + 100 would overflow u8: the literal adapts to u8, and the sum wraps
    assert returns("a = u8(200)\nb = a + 100\nreturn b") == 44


def test_unannotated_literal_local_is_i64() -> None:
    assert returns("a = 1\na = a - 2\nreturn u32(a + 10)") == 9


# -- control flow --------------------------------------------------------------------


def test_if_elif_else() -> None:
    body = """
    x = u32({})
    if x < 10:
        return 1
    elif x < 20:
        return 2
    else:
        return 3
    """
    assert [returns(body.format(v)) for v in (5, 15, 25)] == [1, 2, 3]


def test_while_with_break_and_continue() -> None:
    body = """
    total = u32(0)
    i = u32(0)
    while True:
        i += 1
        if i > 10:
            break
        if i % 2 == 0:
            continue
        total += i
    return total
    """
    assert returns(body) == 1 + 3 + 5 + 7 + 9


@pytest.mark.parametrize(
    ("loop", "expected"),
    [
        ("range(5)", [0, 1, 2, 3, 4]),
        ("range(2, 5)", [2, 3, 4]),
        ("range(10, 0, -3)", [10, 7, 4, 1]),
        ("range(0, 10, 4)", [0, 4, 8]),
        ("range(5, 5)", []),
    ],
)
def test_for_range(loop: str, expected: list[int]) -> None:
    body = f"""
    total = 0
    count = 0
    for i in {loop}:
        total = total * 16 + i
        count += 1
    return u32(total * 16 + count)
    """
    want = 0
    for v in expected:
        want = want * 16 + v
    assert returns(body) == want * 16 + len(expected)


def test_for_variable_keeps_python_iteration_when_reassigned() -> None:
    body = """
    n = u32(0)
    i: u32
    for i in range(u32(4)):
        n += 1
        i = u32(100)
    return n
    """
    assert returns(body) == 4


def test_infinite_loop_raises_termination_error() -> None:
    assert raises("while True:\n    pass\nreturn 0") == "TerminationError: loop budget exhausted"


def test_and_or_short_circuit() -> None:
    # the division by zero on the right is never evaluated
    assert returns("x = u32(0)\nif x != 0 and 10 // x > 1:\n    return 1\nreturn 2") == 2
    assert returns("x = u32(0)\nif x == 0 or 10 // x > 1:\n    return 1\nreturn 2") == 1


def test_ints_are_truthy_and_not_negates() -> None:
    assert returns("x = u32(3)\nif x:\n    return 1\nreturn 2") == 1
    assert returns("x = u32(0)\nif not x:\n    return 1\nreturn 2") == 1


def test_chained_comparison_and_conditional_expression() -> None:
    assert returns("x = u32(5)\nreturn 1 if 0 < x < 10 else 2") == 1
    assert returns("x = u32(50)\nreturn 1 if 0 < x < 10 else 2") == 2


def test_bool_values() -> None:
    assert returns("a = u32(4)\nbig = a > 3\nsmall = not big\nreturn u32(big) * 10 + u32(small)"
                   ) == 10


def test_walrus() -> None:
    assert returns("if (n := u32(7)) > 5:\n    return n\nreturn 0") == 7


def test_assert_and_raise() -> None:
    assert raises("x = u32(1)\nassert x == 2, 'x must be 2'\nreturn 0") == (
        "AssertionError: x must be 2")
    assert raises("raise ValueError('bad port', u32(80))") == "ValueError: bad port 80"
    assert raises("raise KeyError(u32(5))") == "KeyError: 5"


# -- functions -----------------------------------------------------------------------


def test_functions_are_inlined_and_called_in_any_order() -> None:
    before = """
def outer(a: u32) -> u32:
    return inner(a) + 1

def inner(a: u32) -> u32:
    a = a * 2
    return a
"""
    assert returns("x = u32(5)\ny = outer(x)\nreturn y * 100 + x", before=before) == 1105


def test_exception_in_inlined_function_carries_the_call_chain() -> None:
    text = source("""
def check(a: u32) -> None:
    if a > 3:
        raise ValueError(a)

@xdp()
def prog(ctx: XdpContext) -> int:
    check(u32(9))
    return 0
""")
    from pykex.lang import compile_to_ir

    module = compile_to_ir(text, "fw.py")
    result = Interpreter(module).run("prog")
    assert result.exception is not None
    chain = [(loc.function, loc.line) for loc in result.exception.locs]
    assert chain == [("check", 4), ("prog", 8)]


def test_struct_arguments_are_references() -> None:
    before = """
class Pair(Struct):
    a: u32
    b: u32

def bump(p: Pair) -> None:
    p.a += 1
"""
    assert returns("p = Pair(a=1, b=2)\nbump(p)\nbump(p)\nreturn p.a * 10 + p.b",
                   before=before) == 32


# -- maps ----------------------------------------------------------------------------

MAPS = """
class Counter(Struct):
    packets: u64
    bytes: u64

counts = HashMap[u32, u64](max_entries=16)
stats = PerCpuArray[Counter](max_entries=4)
flows = HashMap[u32, Counter](max_entries=16)
"""


def test_map_set_get_contains_delete() -> None:
    body = """
    counts[7] = 40
    counts[7] += 2
    total = counts[7]
    if 8 in counts:
        return 1
    del counts[7]
    if 7 in counts:
        return 2
    return u32(total)
    """
    assert returns(body, before=MAPS) == 42


def test_missing_key_raises_key_error() -> None:
    assert raises("return u32(counts[u32(3)])", before=MAPS) == "KeyError: key 3 not in map counts"
    assert raises("del counts[u32(3)]\nreturn 0", before=MAPS).startswith("KeyError")


def test_array_map_index_out_of_range_raises_index_error() -> None:
    assert raises("c = stats[9]\nreturn 0", before=MAPS) == (
        "IndexError: index 9 out of range for map stats")


def test_get_narrows_to_a_reference() -> None:
    body = """
    flows[1] = Counter(packets=5)
    if (v := flows.get(1)) is not None:
        v.packets += 1
    w = flows.get(1)
    if w is None:
        return 99
    return u32(w.packets)
    """
    assert returns(body, before=MAPS) == 6


def test_setdefault_returns_a_reference_to_the_stored_value() -> None:
    body = """
    c = flows.setdefault(3, Counter())
    c.packets += 2
    d = flows.setdefault(3, Counter(packets=100))
    d.bytes = 5
    e = flows[3]
    return u32(e.packets * 10 + e.bytes)
    """
    assert returns(body, before=MAPS) == 25


def test_atomic_add_and_struct_values_in_array_maps() -> None:
    body = """
    c = stats[2]
    atomic_add(c.packets, 5)
    c.bytes += len(ctx.packet)
    again = stats[2]
    return u32(again.packets * 100 + again.bytes)
    """
    assert returns(body, packet=bytes(7), before=MAPS) == 507


def test_map_state_persists_between_runs() -> None:
    text = source(MAPS + """
@xdp()
def prog(ctx: XdpContext) -> int:
    c = stats[0]
    c.packets += 1
    return u32(c.packets)
""")
    machine = Interpreter(compile_ok(text[len(source("")):]), cpus=1)
    assert [machine.run("prog").retval for _ in range(3)] == [1, 2, 3]


# -- packets ---------------------------------------------------------------------------

HEADERS = """
class Ethernet(Struct):
    dst: Array[u8, 6]
    src: Array[u8, 6]
    proto: be16
"""
FRAME = bytes(range(1, 13)) + b"\x08\x00" + b"GET /index"


def test_packet_reads() -> None:
    assert returns("return u32(ctx.packet[2])", packet=FRAME) == 3
    assert returns("return u32(ctx.packet.read(12, be16))", packet=FRAME) == 0x0800
    assert returns("return u32(ctx.packet.read(12, u16))", packet=FRAME) == 0x0008
    body = "eth = ctx.packet.read(0, Ethernet)\nreturn u32(eth.proto) + eth.src[1]"
    assert returns(body, packet=FRAME, before=HEADERS) == 0x0800 + 8


def test_packet_read_out_of_bounds_raises_index_error_with_offset_size_length() -> None:
    assert raises("return u32(ctx.packet.read(10, u32))", packet=bytes(12)) == (
        "IndexError: packet offset 10 + 4 > length 12")


def test_packet_writes() -> None:
    text = source(HEADERS + """
@xdp()
def prog(ctx: XdpContext) -> int:
    ctx.packet[0] = 0xAA
    ctx.packet.write(1, u16(0x1234))
    ctx.packet.write(3, u16(0x1234), be16)
    eth = ctx.packet.read(0, Ethernet)
    eth.proto = 0x86DD
    ctx.packet.write(0, eth)
    return len(ctx.packet)
""")
    module = compile_ok(text[len(source("")):])
    result = Interpreter(module).run("prog", FRAME)
    assert result.exception is None
    assert result.packet[:5] == b"\xaa\x34\x12\x12\x34"
    assert result.packet[12:14] == b"\x86\xdd"
    assert result.retval == len(FRAME)


def test_packet_slice_comparison_and_copy() -> None:
    assert returns("if ctx.packet[14:18] == b'GET ':\n    return 1\nreturn 2", FRAME) == 1
    assert returns("if ctx.packet[14:18] != b'POST':\n    return 1\nreturn 2", FRAME) == 1
    assert returns("if ctx.packet[15:17] == b'ET':\n    return 1\nreturn 2", FRAME) == 1
    assert returns("if ctx.packet[0:12] == b'abcdefghijkl':\n    return 1\nreturn 2", FRAME) == 2
    body = "off = u32(14)\nhead = ctx.packet[off:off + 3]\nreturn u32(head[2])"
    assert returns(body, FRAME) == ord("T")


# -- globals and print ------------------------------------------------------------------


def test_globals_read_and_struct_global_updates() -> None:
    before = """
class State(Struct):
    seen: u64

threshold: u32 = 5
state: State = State()
"""
    text = source(before + """
@xdp()
def prog(ctx: XdpContext) -> int:
    state.seen += 1
    if state.seen > threshold:
        return 1
    return 2
""")
    module = compile_ok(text[len(source("")):])
    machine = Interpreter(module)
    assert [machine.run("prog").retval for _ in range(7)] == [2] * 5 + [1, 1]
    sections = {m.name: m for m in module.maps}
    assert sections[".data"].initial[:4] == (5).to_bytes(4, "little")
    assert ".bss" in sections


def test_print_builds_a_format_string() -> None:
    text = source("""
@xdp()
def prog(ctx: XdpContext) -> int:
    x = u32(7)
    y = i32(-2)
    print("pid", x, "->", y, "100%")
    return 0
""")
    module = compile_ok(text[len(source("")):])
    machine = Interpreter(module)
    machine.run("prog")
    assert machine.trace == ["pid 7 -> -2 100%"]
