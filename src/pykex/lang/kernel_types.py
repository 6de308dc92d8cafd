"""Kernel structs as the build machine's vmlinux BTF describes them.

``current_task().real_parent.tgid`` is compiled into probe reads at the
offsets BTF gives for ``struct task_struct``; nothing about the layout is
hard-coded, and a member that does not exist is a compile-time error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pykex.btf import (
    Array,
    BTFError,
    Composite,
    EnumBase,
    Int,
    IntEncoding,
    Kind,
    Pointer,
    Spec,
    load_vmlinux,
)
from pykex.ir.nodes import Scalar
from pykex.lang.types import U8_T, U64_T, ArrayT, IntT, KernelT, StringT, Type


class KernelTypeError(Exception):
    """The member or type cannot be read from the kernel (message for the user)."""


@cache
def vmlinux() -> Spec:
    try:
        return load_vmlinux()
    except (BTFError, OSError) as failure:
        raise KernelTypeError(f"cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): "
                              f"{failure}") from None


def struct_pointer(name: str) -> KernelT:
    """``struct <name> *``."""
    try:
        found = vmlinux().find(name, Kind.STRUCT)
    except BTFError:
        raise KernelTypeError(f"the kernel has no struct {name}") from None
    return KernelT(name, found)


@dataclass(frozen=True)
class KernelMember:
    """How to read one member: at ``offset`` from the aggregate's address,
    ``size`` bytes, seen as ``type`` (an integer, a string, a pointer to
    another struct, an embedded struct, or a char array)."""

    offset: int
    size: int
    type: Type


def member(owner: KernelT, name: str) -> KernelMember:
    spec = vmlinux()
    try:
        found = spec.member(owner.btf, name)  # type: ignore[arg-type]
    except BTFError:
        raise KernelTypeError(f"struct {owner.name} has no member {name!r}") from None
    where = f"{owner.name}.{name}"
    if found.bitfield_size:
        raise KernelTypeError(f"{where} is a bitfield, which pykex cannot read yet")
    target = spec.resolve(found.type)
    offset = found.byte_offset
    if isinstance(target, Int | EnumBase) and found.size in (1, 2, 4, 8):
        signed = (bool(target.encoding & IntEncoding.SIGNED) if isinstance(target, Int)
                  else target.signed)
        return KernelMember(offset, found.size, IntT(Scalar(found.size * 8, signed)))
    if isinstance(target, Pointer):
        pointee = spec.resolve(target.target) if target.target else None
        if isinstance(pointee, Composite) and pointee.name:
            return KernelMember(offset, 8, KernelT(pointee.name, pointee))
        if isinstance(pointee, Int) and pointee.size == 1:
            return KernelMember(offset, 8, StringT("kernel"))
        return KernelMember(offset, 8, U64_T)
    if isinstance(target, Composite):
        return KernelMember(offset, found.size,
                            KernelT(target.name or "(anonymous)", target, pointer=False))
    if isinstance(target, Array):
        element = spec.resolve(target.element)
        if isinstance(element, Int) and element.size == 1:
            return KernelMember(offset, found.size, ArrayT(U8_T, target.count, text=True))
    raise KernelTypeError(f"{where} has a type pykex cannot read yet")
