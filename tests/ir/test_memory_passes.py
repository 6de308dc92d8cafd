"""Frame store-to-load forwarding and redundant casts, as text before/after."""

from __future__ import annotations

from pykex.ir.nodes import (
    I8,
    U8,
    U16,
    U32,
    U64,
    BinOp,
    Call,
    Cast,
    FrameAddr,
    Load,
    Return,
    Store,
)
from pykex.ir.passes import eliminate_redundant_casts, forward_frame_stores

from .test_passes import Builder, text


def test_loads_of_stored_slots_become_conversions_of_the_stored_value() -> None:
    b = Builder()
    fp, slot = b.t("fp", True), b.t("slot", True)
    x, y, z, w = b.t("x"), b.t("y"), b.t("z"), b.t("w")
    b.block(
        "entry",
        FrameAddr(fp, 0),
        FrameAddr(slot, 8),
        Store(fp, 8, 300, U16),
        Load(x, slot, 0, U8),  # the low byte of the u16 just stored: cast.u8 300
        Load(y, fp, 8, U16),
        Load(z, fp, 8, U16),  # read again: the first read's value
        Store(fp, 0, y, U32),
        Load(w, fp, 0, U32),
        Return(w),
    )
    assert forward_frame_stores(b.function)
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            %fp1 = frame + 0
            %slot2 = frame + 8
            store.u16 [%fp1 + 8], 300
            %x3 = cast.u8 300
            %y4 = cast.u16 300
            %z5 = cast.u16 300
            store.u32 [%fp1 + 0], %y4
            %w6 = cast.u32 %y4
            return %w6
    """)


def test_calls_and_stores_through_unknown_pointers_forget_the_frame() -> None:
    b = Builder()
    fp, elem, x, y, ref = b.t("fp", True), b.t("elem", True), b.t("x"), b.t("y"), b.t("ref", True)
    b.block(
        "entry",
        FrameAddr(fp, 0),
        Store(fp, 0, 1, U64),
        Call(ref, "bpf_map_lookup_elem", []),
        Load(x, fp, 0, U64),  # the helper may have written the frame
        Store(ref, 0, 5, U64),  # a map value: the frame stays known
        Load(y, fp, 0, U64),
        BinOp(elem, "add", fp, x, U64),
        Store(elem, 0, 7, U64),  # may point anywhere into the frame
        Load(x, fp, 0, U64),
        Return(x),
    )
    assert forward_frame_stores(b.function)
    loads = [str(i) for i in b.function.blocks[0].instrs if isinstance(i, Load)]
    assert loads == ["%x3 = load.u64 [%fp1 + 0]", "%x3 = load.u64 [%fp1 + 0]"]
    assert "%y4 = %x3" in str(b.function)


def test_a_value_written_again_is_not_forwarded() -> None:
    b = Builder()
    fp, x, y = b.t("fp", True), b.t("x"), b.t("y")
    b.block(
        "entry",
        FrameAddr(fp, 0),
        Store(fp, 0, x, U64),
        BinOp(x, "add", x, 1, U64),
        Load(y, fp, 0, U64),
        Return(y),
    )
    assert not forward_frame_stores(b.function)


def test_casts_of_values_already_in_range_become_copies() -> None:
    b = Builder()
    fp, byte, signed, wide, keep, narrow = (b.t(h) for h in ("fp", "b", "s", "w", "k", "n"))
    fp.pointer = True
    b.block(
        "entry",
        FrameAddr(fp, 0),
        Load(byte, fp, 0, U8),
        Cast(wide, byte, U32),  # a u8 is a u32 already
        Load(signed, fp, 1, I8),
        Cast(keep, signed, U32),  # a negative i8 is not
        Cast(narrow, wide, U8),
        Return(narrow),
    )
    while eliminate_redundant_casts(b.function):
        pass
    body = str(b.function)
    assert "%w4 = %b2" in body
    assert "%k5 = cast.u32 %s3" in body
    assert "%n6 = cast.u8 %w4" not in body and "%n6 = %w4" in body


def test_loads_of_a_copied_header_read_the_packet() -> None:
    from pykex.ir.nodes import MemCopy, PacketPtr
    from pykex.ir.passes import read_packet_copies_in_place

    b = Builder()
    fp, pkt, ref = b.t("fp", True), b.t("pkt", True), b.t("ref", True)
    x, y, z = b.t("x"), b.t("y"), b.t("z")
    b.block(
        "entry",
        FrameAddr(fp, 0),
        PacketPtr(pkt, 0, 14, "short"),
        MemCopy(fp, 2, pkt, 0, 14),
        Load(x, fp, 14, U16, big_endian=True),  # bytes 12-13 of the header
        Store(fp, 4, 0, U8),  # overwrites part of the copy: its bytes are the frame's now
        Load(y, fp, 4, U8),
        Call(ref, "bpf_xdp_adjust_head", [0, 0]),  # the packet may move
        Load(z, fp, 10, U32),
        Return(x),
    )
    b.block("short", Return(0))
    assert read_packet_copies_in_place(b.function)
    shown = str(b.function)
    assert "%x4 = load.u16.be [%pkt2 + 12]" in shown
    assert "%y5 = load.u8 [%fp1 + 4]" in shown
    assert "%z6 = load.u32 [%fp1 + 10]" in shown


def test_a_big_endian_value_only_stored_big_endian_moves_unswapped() -> None:
    from pykex.ir.passes import cancel_byte_swaps

    b = Builder()
    fp, x, y = b.t("fp", True), b.t("x"), b.t("y")
    b.block(
        "entry",
        FrameAddr(fp, 0),
        Load(x, fp, 0, U32, big_endian=True),
        Store(fp, 4, x, U32, big_endian=True),
        Load(y, fp, 8, U16, big_endian=True),  # also compared: keeps its swap
        Store(fp, 10, y, U16, big_endian=True),
        Return(y),
    )
    assert cancel_byte_swaps(b.function)
    assert str(b.function) == text("""
        function f (frame 16 bytes)
        entry:
            %fp1 = frame + 0
            %x2 = load.u32 [%fp1 + 0]
            store.u32 [%fp1 + 4], %x2
            %y3 = load.u16.be [%fp1 + 8]
            store.u16.be [%fp1 + 10], %y3
            return %y3
    """)
