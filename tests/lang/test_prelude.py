"""The prelude is ordinary Python: extensions import and run in CPython."""

from __future__ import annotations

import types

import pytest

from pykex.lang import prelude

from .helpers import source
from .test_valid import DESIGN_EXAMPLE


def _import(text: str) -> types.ModuleType:
    module = types.ModuleType("extension")
    code = compile(text.replace("from pykex import", "from pykex.lang.prelude import", 1),
                   "extension.py", "exec", dont_inherit=True)
    exec(code, module.__dict__)
    return module


def test_every_exported_name_exists() -> None:
    assert all(hasattr(prelude, name) for name in prelude.__all__)


def test_an_extension_imports_and_runs_in_cpython() -> None:
    ext = _import(source(DESIGN_EXAMPLE))
    assert ext.firewall.__pykex_program__ == {"kind": "xdp", "on_error": prelude.XDP_PASS}
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    ctx = prelude.XdpContext(bytes(12) + b"\x08\x00" + ip)
    assert ext.firewall(ctx) == prelude.XDP_PASS
    assert ext.stats[6].packets == 1
    ext.blocked[0x0A000001] = 1
    assert ext.firewall(ctx) == prelude.XDP_DROP


def test_maps_behave_like_their_kernel_kinds() -> None:
    m = prelude.HashMap[prelude.u32, prelude.u8](max_entries=1)
    m[1] = 2
    with pytest.raises(MemoryError):
        m[2] = 3
    lru = prelude.LruHashMap[prelude.u32, prelude.u8](max_entries=1)
    lru[1] = 1
    lru[2] = 2
    assert 1 not in lru and lru[2] == 2
    array = prelude.ArrayMap[prelude.u64](max_entries=2)
    assert array[1] == 0
    with pytest.raises(IndexError):
        array[2] = 1


def test_byte_order_helpers_and_packet_bounds() -> None:
    assert prelude.ntohs(0x1234) == 0x3412
    assert prelude.htonl(0x12345678) == 0x78563412
    packet = prelude.Packet(b"\x01\x02")
    with pytest.raises(IndexError) as caught:
        packet.read(1, prelude.u16)
    assert caught.value.args == (1, 2, 2)


def test_decorators_record_how_programs_attach() -> None:
    @prelude.tc(direction="egress", on_error=prelude.TC_ACT_SHOT)
    def shape(ctx: prelude.TcContext) -> int:
        return prelude.TC_ACT_OK

    assert shape.__pykex_program__ == {"kind": "tc", "on_error": 2, "direction": "egress"}
    with pytest.raises(ValueError):
        prelude.tc(direction="sideways")
