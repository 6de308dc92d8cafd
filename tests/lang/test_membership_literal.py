"""`x in (A, B, C)`: membership in a literal tuple, list or set of options."""

from __future__ import annotations

import pytest

from pykex.lang import check, compile_to_ir
from pykex.runtime import load, load_host

MODES = [
    pytest.param(load, id="kernel", marks=pytest.mark.kernel),
    pytest.param(load_host, id="host"),
]

SOURCE = """
from pykex import xdp, XdpContext, XDP_PASS, XDP_DROP, u8

A = 4

@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    b = ctx.packet[0]
    if b in (1, 3, A):
        return XDP_DROP
    ok = b not in [7, 8]
    if not ok:
        return 3
    if b in ():
        return 4
    return XDP_PASS
"""


@pytest.mark.parametrize("mode", MODES)
def test_literal_membership_matches_python(tmp_path, mode) -> None:
    path = tmp_path / "member.py"
    path.write_text(SOURCE)
    with mode(str(path)) as ext:
        got = [ext.prog.test_run(bytes([b]) + bytes(63)).retval for b in range(10)]

    def python(b: int) -> int:
        if b in (1, 3, 4):
            return 1
        if b in [7, 8]:
            return 3
        return 2

    assert got == [python(b) for b in range(10)]


@pytest.mark.parametrize("test", ["ctx.packet[0] in (1, 2)", "f() in (1, 2)"])
def test_tested_value_must_be_a_plain_read(test: str) -> None:
    source = f"""
from pykex import xdp, XdpContext, XDP_PASS

def f() -> u8:
    return 1

@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    if {test}:
        return 1
    return XDP_PASS
""".replace("from pykex import xdp", "from pykex import u8, xdp")
    diagnostics = check(source, "m.py")
    assert [d.message for d in diagnostics] == [
        "the value tested with `in (...)` is read once per option"
    ]


def test_literal_membership_compiles() -> None:
    assert compile_to_ir(SOURCE, "member.py").programs
