"""Module globals read from user space with ``ext.variable(name)``, in both modes."""

from __future__ import annotations

import struct

import pytest

from pykex.compiler import Compilation

SOURCE = """\
from pykex import xdp, XdpContext, Struct, atomic_add, u16, u64

class Totals(Struct):
    packets: u64
    bytes: u64

LIMIT = 7
limit: u16 = LIMIT
totals: Totals = Totals()
tag: u16 = 0

@xdp
def count(ctx: XdpContext) -> int:
    atomic_add(totals.packets, 1)
    atomic_add(totals.bytes, len(ctx.packet))
    return limit
"""
PACKET = bytes(60)


@pytest.fixture
def ext(open_extension):
    return open_extension(Compilation("globals.py", source=SOURCE))


def test_variables_follow_the_program_runs(ext) -> None:
    assert ext.variable("totals") == bytes(16)
    assert ext.count.test_run(PACKET, repeat=5).retval == 7
    assert struct.unpack("<QQ", ext.variable("totals")) == (5, 5 * len(PACKET))


def test_data_and_bss_variables_are_told_apart(ext) -> None:
    ext.count.test_run(PACKET)  # totals, before tag in .bss, is no longer zero
    assert ext.variable("limit") == struct.pack("<H", 7)  # initialised: .data
    assert ext.variable("tag") == bytes(2)  # zero: .bss, after totals


def test_unknown_variable_names_the_known_ones(ext) -> None:
    with pytest.raises(KeyError, match=r"no global variable 'LIMIT' .*limit, tag, totals"):
        ext.variable("LIMIT")  # a constant, not a variable
