"""Module-level byte strings and constants computed from Struct sizes, in the
kernel and in host mode."""

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
from pykex import xdp, XdpContext, XDP_PASS, u32
from pykex.net import Ethernet, IPv4

MAGIC = b"pykex!"
WORD = 4
IP_OFFSET = Ethernet.size
PAYLOAD_OFFSET = Ethernet.size + IPv4.size
MAGIC_LEN = len(MAGIC)
LAST = MAGIC[-1]

@xdp(on_error=XDP_PASS)
def find(ctx: XdpContext) -> int:
    for i in range(len(ctx.packet) - len(MAGIC) + 1):
        if ctx.packet[i] == MAGIC[0] and ctx.packet[i : i + len(MAGIC)] == MAGIC:
            return 100 + i
    return 0

@xdp(on_error=XDP_PASS)
def word(ctx: XdpContext) -> int:
    i = u32(ctx.packet[0])
    if ctx.packet[i : i + WORD] == b"word":
        return 1
    return 0

@xdp(on_error=XDP_PASS)
def index(ctx: XdpContext) -> int:
    return MAGIC[u32(ctx.packet[0])]

@xdp(on_error=XDP_PASS)
def sizes(ctx: XdpContext) -> int:
    return IP_OFFSET * 10000 + PAYLOAD_OFFSET * 100 + MAGIC_LEN + u32(LAST) * 1000000
"""


def _open(mode, source: str = SOURCE):
    return mode(Compilation("ext.py", source))


@pytest.mark.parametrize("mode", MODES)
def test_a_byte_string_is_found_with_a_slice_of_its_length(mode) -> None:
    packets = [b"pykex!" + bytes(20), bytes(7) + b"xpykex!" + bytes(3), bytes(10) + b"pykex",
               b"pykexpykex?" * 3, bytes(9) + b"pykex!"]
    with _open(mode) as ext:
        got = [ext.find.test_run(p).retval for p in packets]
    assert got == [100 + p.find(b"pykex!") if b"pykex!" in p else 0 for p in packets]


@pytest.mark.parametrize("mode", MODES)
def test_a_slice_length_may_be_an_integer_constant(mode) -> None:
    with _open(mode) as ext:
        assert ext.word.test_run(b"\x03..word" + bytes(8)).retval == 1
        assert ext.word.test_run(b"\x02..word" + bytes(8)).retval == 0
        short = ext.word.test_run(bytes([11]) + bytes(13))  # bytes 11..15 of 14
    assert short.exception is not None and "IndexError" in str(short.exception)


@pytest.mark.parametrize("mode", MODES)
def test_a_byte_string_is_indexed_like_bytes(mode) -> None:
    with _open(mode) as ext:
        got = [ext.index.test_run(bytes([i]) + bytes(15)).retval for i in range(6)]
        past = ext.index.test_run(bytes([6]) + bytes(15))
    assert got == list(b"pykex!")
    assert past.exception is not None and "IndexError" in str(past.exception)
    assert past.retval == 2  # on_error


@pytest.mark.parametrize("mode", MODES)
def test_constants_from_struct_sizes_and_byte_strings(mode) -> None:
    with _open(mode) as ext:
        assert ext.sizes.test_run(bytes(16)).retval == 14 * 10000 + 34 * 100 + 6 + 33 * 1000000


@pytest.mark.parametrize(("line", "headline"), [
    ("X = MAGIC + 1", "ext.py:3:4: error: MAGIC is a byte string, not an integer"),
    ("X = MAGIC[6]", "ext.py:3:10: error: index 6 is out of range for a byte string of 6 bytes"),
    ("X = Ethernet.size + Missing.size", "ext.py:3:20: error: not a constant expression"),
])
def test_module_level_mistakes(line: str, headline: str) -> None:
    source = f'from pykex.net import Ethernet\nMAGIC = b"pykex!"\n{line}\n'
    assert check(source, "ext.py")[0].headline == headline


@pytest.mark.parametrize(("body", "message"), [
    ("MAGIC[0] = 1\n    return 0", "cannot index a bytes"),
    ("x = MAGIC\n    return 0", "byte strings exist only as constants"),
    ("return MAGIC[9]", "index 9 is out of range for a byte string of 6 bytes"),
    ("n = u32(ctx.packet[0])\n    return MAGIC[0:n] == b'py'", "byte strings cannot be sliced"),
])
def test_byte_strings_are_read_only_constants(body: str, message: str) -> None:
    source = ('from pykex import xdp, XdpContext, u32\nMAGIC = b"pykex!"\n@xdp()\n'
              f"def prog(ctx: XdpContext) -> int:\n    {body}\n")
    diagnostics = check(source, "ext.py")
    assert diagnostics and message in diagnostics[0].message, diagnostics
