"""What a BPF object holds, as plain values: no ELF bytes and no syscalls.

An :class:`ObjectSpec` is the meeting point of the three other modules: the
writer turns one into an ELF object, the reader turns an ELF object (ours or
clang's) back into one, and the loader creates its maps and programs.

Programs are kept the way an ELF object keeps them: each function on its own,
with :class:`Relocation` records naming what its instructions refer to (a
map, a map's value, another function, a kernel function). Relocated
instructions are stored in one canonical form (the one clang writes), so two
specs that mean the same compare equal. :func:`link_program` makes a loadable
program out of an entry point by appending the subprograms it calls, the
way libbpf does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from pykex.bpf import BpfError, Instruction, SourceLocation, encode
from pykex.bpf.opcodes import PseudoSrc
from pykex.bpf.program import RelocationKind as BpfRelocationKind
from pykex.btf import FuncInfo, LineInfo
from pykex.btf.ext import COLUMN_BITS
from pykex.kernel.program import MapRelocation
from pykex.kernel.uapi import (
    BPF_F_SLEEPABLE,
    BPF_F_XDP_HAS_FRAGS,
    AttachType,
    MapFlag,
    MapType,
    ProgType,
)

from .errors import ObjectSpecError

INSN_SIZE = 8
TEXT_SECTION = ".text"
MAPS_SECTION = ".maps"
LICENSE_SECTION = "license"

_LD_IMM64 = 0x18
_CALL = 0x85
_PSEUDO_CALL = 1
_PSEUDO_KFUNC_CALL = 2
_PSEUDO_FUNC = 4
_INSN = struct.Struct("<BBhi")


def is_data_section(name: str) -> bool:
    """Whether ``name`` holds global variables (``.bss``, ``.data*``, ``.rodata*``)."""
    return name == ".bss" or any(
        name == base or name.startswith(base + ".") for base in (".data", ".rodata")
    )


def is_read_only_section(name: str) -> bool:
    return name == ".rodata" or name.startswith(".rodata.")


# -- section names -> program types ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SectionType:
    """How libbpf reads a program section name: ``prefix`` alone or ``prefix/anything``."""

    prefix: str
    prog_type: ProgType
    attach_type: AttachType | None = None
    prog_flags: int = 0

    def matches(self, section: str) -> bool:
        return section == self.prefix or section.startswith(self.prefix + "/")


_P, _A = ProgType, AttachType

#: Section names pykex understands, following libbpf's ``SEC()`` conventions.
SECTION_TYPES: tuple[SectionType, ...] = (
    SectionType("socket", _P.SOCKET_FILTER),
    SectionType("sk_reuseport/migrate", _P.SK_REUSEPORT, _A.SK_REUSEPORT_SELECT_OR_MIGRATE),
    SectionType("sk_reuseport", _P.SK_REUSEPORT, _A.SK_REUSEPORT_SELECT),
    SectionType("kprobe", _P.KPROBE),
    SectionType("kretprobe", _P.KPROBE),
    SectionType("ksyscall", _P.KPROBE),
    SectionType("kretsyscall", _P.KPROBE),
    SectionType("uprobe", _P.KPROBE),
    SectionType("uretprobe", _P.KPROBE),
    SectionType("uprobe.s", _P.KPROBE, None, BPF_F_SLEEPABLE),
    SectionType("uretprobe.s", _P.KPROBE, None, BPF_F_SLEEPABLE),
    SectionType("kprobe.multi", _P.KPROBE, _A.TRACE_KPROBE_MULTI),
    SectionType("kretprobe.multi", _P.KPROBE, _A.TRACE_KPROBE_MULTI),
    SectionType("uprobe.multi", _P.KPROBE, _A.TRACE_UPROBE_MULTI),
    SectionType("uretprobe.multi", _P.KPROBE, _A.TRACE_UPROBE_MULTI),
    SectionType("action", _P.SCHED_ACT),
    SectionType("tc/ingress", _P.SCHED_CLS, _A.TCX_INGRESS),
    SectionType("tc/egress", _P.SCHED_CLS, _A.TCX_EGRESS),
    SectionType("tcx/ingress", _P.SCHED_CLS, _A.TCX_INGRESS),
    SectionType("tcx/egress", _P.SCHED_CLS, _A.TCX_EGRESS),
    SectionType("tc", _P.SCHED_CLS),
    SectionType("classifier", _P.SCHED_CLS),
    SectionType("tracepoint", _P.TRACEPOINT),
    SectionType("tp", _P.TRACEPOINT),
    SectionType("raw_tracepoint", _P.RAW_TRACEPOINT),
    SectionType("raw_tp", _P.RAW_TRACEPOINT),
    SectionType("raw_tracepoint.w", _P.RAW_TRACEPOINT_WRITABLE),
    SectionType("raw_tp.w", _P.RAW_TRACEPOINT_WRITABLE),
    SectionType("tp_btf", _P.TRACING, _A.TRACE_RAW_TP),
    SectionType("fentry", _P.TRACING, _A.TRACE_FENTRY),
    SectionType("fexit", _P.TRACING, _A.TRACE_FEXIT),
    SectionType("fmod_ret", _P.TRACING, _A.MODIFY_RETURN),
    SectionType("fentry.s", _P.TRACING, _A.TRACE_FENTRY, BPF_F_SLEEPABLE),
    SectionType("fexit.s", _P.TRACING, _A.TRACE_FEXIT, BPF_F_SLEEPABLE),
    SectionType("iter", _P.TRACING, _A.TRACE_ITER),
    SectionType("lsm", _P.LSM, _A.LSM_MAC),
    SectionType("lsm.s", _P.LSM, _A.LSM_MAC, BPF_F_SLEEPABLE),
    SectionType("xdp/devmap", _P.XDP, _A.XDP_DEVMAP),
    SectionType("xdp/cpumap", _P.XDP, _A.XDP_CPUMAP),
    SectionType("xdp.frags", _P.XDP, _A.XDP, BPF_F_XDP_HAS_FRAGS),
    SectionType("xdp", _P.XDP, _A.XDP),
    SectionType("perf_event", _P.PERF_EVENT),
    SectionType("lwt_in", _P.LWT_IN),
    SectionType("lwt_out", _P.LWT_OUT),
    SectionType("lwt_xmit", _P.LWT_XMIT),
    SectionType("sockops", _P.SOCK_OPS, _A.CGROUP_SOCK_OPS),
    SectionType("sk_skb/stream_parser", _P.SK_SKB, _A.SK_SKB_STREAM_PARSER),
    SectionType("sk_skb/stream_verdict", _P.SK_SKB, _A.SK_SKB_STREAM_VERDICT),
    SectionType("sk_skb/verdict", _P.SK_SKB, _A.SK_SKB_VERDICT),
    SectionType("sk_skb", _P.SK_SKB),
    SectionType("sk_msg", _P.SK_MSG, _A.SK_MSG_VERDICT),
    SectionType("flow_dissector", _P.FLOW_DISSECTOR, _A.FLOW_DISSECTOR),
    SectionType("sk_lookup", _P.SK_LOOKUP, _A.SK_LOOKUP),
    SectionType("netfilter", _P.NETFILTER, _A.NETFILTER),
    SectionType("syscall", _P.SYSCALL),
    SectionType("cgroup_skb/ingress", _P.CGROUP_SKB, _A.CGROUP_INET_INGRESS),
    SectionType("cgroup_skb/egress", _P.CGROUP_SKB, _A.CGROUP_INET_EGRESS),
    SectionType("cgroup/skb", _P.CGROUP_SKB),
    SectionType("cgroup/sock_create", _P.CGROUP_SOCK, _A.CGROUP_INET_SOCK_CREATE),
    SectionType("cgroup/sock_release", _P.CGROUP_SOCK, _A.CGROUP_INET_SOCK_RELEASE),
    SectionType("cgroup/sock", _P.CGROUP_SOCK, _A.CGROUP_INET_SOCK_CREATE),
    SectionType("cgroup/post_bind4", _P.CGROUP_SOCK, _A.CGROUP_INET4_POST_BIND),
    SectionType("cgroup/post_bind6", _P.CGROUP_SOCK, _A.CGROUP_INET6_POST_BIND),
    SectionType("cgroup/dev", _P.CGROUP_DEVICE, _A.CGROUP_DEVICE),
    SectionType("cgroup/bind4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_BIND),
    SectionType("cgroup/bind6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_BIND),
    SectionType("cgroup/connect4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_CONNECT),
    SectionType("cgroup/connect6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_CONNECT),
    SectionType("cgroup/sendmsg4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UDP4_SENDMSG),
    SectionType("cgroup/sendmsg6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UDP6_SENDMSG),
    SectionType("cgroup/recvmsg4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UDP4_RECVMSG),
    SectionType("cgroup/recvmsg6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UDP6_RECVMSG),
    SectionType("cgroup/getpeername4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_GETPEERNAME),
    SectionType("cgroup/getpeername6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_GETPEERNAME),
    SectionType("cgroup/getsockname4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_GETSOCKNAME),
    SectionType("cgroup/getsockname6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_GETSOCKNAME),
    SectionType("cgroup/sysctl", _P.CGROUP_SYSCTL, _A.CGROUP_SYSCTL),
    SectionType("cgroup/getsockopt", _P.CGROUP_SOCKOPT, _A.CGROUP_GETSOCKOPT),
    SectionType("cgroup/setsockopt", _P.CGROUP_SOCKOPT, _A.CGROUP_SETSOCKOPT),
)

# Longest prefixes first, so "xdp/devmap" wins over "xdp" and "tc/ingress" over "tc".
_BY_SPECIFICITY = sorted(SECTION_TYPES, key=lambda entry: len(entry.prefix), reverse=True)


def section_type(section: str) -> SectionType:
    """The program type libbpf would give a program in ``section``."""
    for entry in _BY_SPECIFICITY:
        if entry.matches(section):
            return entry
    raise ObjectSpecError(
        f"section {section!r} names no known program type (for example 'xdp', 'tc',"
        " 'tracepoint/<category>/<name>', 'raw_tracepoint/<name>', 'socket')"
    )


# -- relocations ---------------------------------------------------------------------------


class RelocationKind(Enum):
    """What a relocated instruction refers to."""

    MAP = "map"  # 64-bit load of a map (becomes its fd)
    MAP_VALUE = "map_value"  # 64-bit load of the address of a map's value + offset (globals)
    CALL = "call"  # bpf-to-bpf call, or a 64-bit load of a function's address (callbacks)
    KFUNC = "kfunc"  # call of a kernel function by name


@dataclass(frozen=True, slots=True)
class Relocation:
    """Instruction slot ``insn`` of a function refers to ``target``.

    ``target`` is a map name (MAP, MAP_VALUE), a function name (CALL) or a
    kernel function name (KFUNC); ``offset`` is the byte offset into the map
    value for MAP_VALUE.
    """

    insn: int
    kind: RelocationKind
    target: str
    offset: int = 0


# -- maps --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variable:
    """A global variable at ``offset`` of a data section, ``btf_type_id`` its type (0: none)."""

    name: str
    offset: int
    size: int
    btf_type_id: int = 0


@dataclass
class MapSpec:
    """A map to create: one in ``.maps``, or a global-data section (``.bss``, ``.data``...).

    For global-data maps the name is the section name, ``data`` the initial
    contents and ``variables`` the symbols inside; create them with
    :meth:`global_data`. BTF key/value ids refer to :attr:`ObjectSpec.btf`.
    """

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    data: bytes | None = None
    variables: list[Variable] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.name:
            raise ObjectSpecError("a map needs a name")
        for attribute in ("type", "key_size", "value_size", "max_entries", "flags"):
            value = getattr(self, attribute)
            if not isinstance(value, int) or not 0 <= value < 1 << 32:
                raise ObjectSpecError(f"map {self.name!r}: {attribute} {value!r} is not a u32")
        if self.is_global_data:
            if self.data is None or len(self.data) != self.value_size:
                raise ObjectSpecError(
                    f"global-data map {self.name!r} needs initial contents of value_size bytes"
                )
            for var in self.variables:
                if var.offset < 0 or var.size < 0 or var.offset + var.size > self.value_size:
                    raise ObjectSpecError(
                        f"variable {var.name!r} lies outside section {self.name!r}"
                    )
        elif self.data is not None or self.variables:
            raise ObjectSpecError(f"map {self.name!r}: only global-data maps have contents")

    @property
    def is_global_data(self) -> bool:
        return is_data_section(self.name)

    @property
    def section(self) -> str:
        """The ELF section the map lives in."""
        return self.name if self.is_global_data else MAPS_SECTION

    @classmethod
    def global_data(
        cls, section: str, data: bytes, variables: Iterable[Variable] = ()
    ) -> MapSpec:
        """The single-entry array libbpf makes of a global-data section."""
        if not is_data_section(section):
            raise ObjectSpecError(f"{section!r} is not a global-data section")
        flags = MapFlag.RDONLY_PROG if is_read_only_section(section) else 0
        return cls(
            name=section,
            type=MapType.ARRAY,
            key_size=4,
            value_size=len(data),
            max_entries=1,
            flags=int(flags),
            data=bytes(data),
            variables=list(variables),
        )


# -- programs ------------------------------------------------------------------------------


@dataclass
class ProgramSpec:
    """One function: an entry point in ``section``, or a subprogram in ``.text``.

    ``code`` is the encoded instructions; ``func_info`` and ``line_info``
    count instructions from this function's start, and type ids refer to
    :attr:`ObjectSpec.btf`.
    """

    name: str
    section: str
    code: bytes
    relocations: list[Relocation] = field(default_factory=list)
    func_info: list[FuncInfo] = field(default_factory=list)
    line_info: list[LineInfo] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.name:
            raise ObjectSpecError("a program needs a name")
        if not self.code or len(self.code) % INSN_SIZE:
            raise ObjectSpecError(
                f"program {self.name!r}: code of {len(self.code)} bytes is not a non-empty"
                " sequence of 8-byte instructions"
            )
        if not self.is_subprogram:
            section_type(self.section)
        self.code = _canonical_code(self.name, self.code, self.relocations)
        for record in [*self.func_info, *self.line_info]:
            if not 0 <= record.insn < self.insn_count:
                raise ObjectSpecError(
                    f"program {self.name!r}: debug info for instruction {record.insn},"
                    f" beyond its {self.insn_count} instructions"
                )

    @property
    def is_subprogram(self) -> bool:
        return self.section == TEXT_SECTION

    @property
    def insn_count(self) -> int:
        return len(self.code) // INSN_SIZE

    @property
    def section_type(self) -> SectionType:
        return section_type(self.section)

    @property
    def prog_type(self) -> ProgType:
        return self.section_type.prog_type

    @property
    def expected_attach_type(self) -> AttachType | None:
        return self.section_type.attach_type


def _canonical_code(name: str, code: bytes, relocations: Iterable[Relocation]) -> bytes:
    """Rewrite relocated instructions into the form clang writes to ELF objects.

    The loader overwrites these fields anyway; fixing them here makes equal
    specs equal and gives the writer exactly the bytes libbpf expects.
    """
    patched = bytearray(code)
    slots = len(code) // INSN_SIZE
    for reloc in relocations:
        where = f"program {name!r}: {reloc.kind.value} relocation at instruction {reloc.insn}"
        if not 0 <= reloc.insn < slots:
            raise ObjectSpecError(f"{where} lies outside the program")
        at = reloc.insn * INSN_SIZE
        opcode, regs, _, _ = _INSN.unpack_from(patched, at)
        wide = opcode == _LD_IMM64 and reloc.insn + 1 < slots
        if reloc.kind in (RelocationKind.MAP, RelocationKind.MAP_VALUE) or (
            reloc.kind is RelocationKind.CALL and opcode == _LD_IMM64
        ):
            if not wide:
                raise ObjectSpecError(f"{where} does not point at a 64-bit immediate load")
            if reloc.offset and reloc.kind is not RelocationKind.MAP_VALUE:
                raise ObjectSpecError(f"{where} has an offset, which only map values take")
            if not 0 <= reloc.offset < 1 << 31:
                raise ObjectSpecError(f"{where}: offset {reloc.offset} out of range")
            _INSN.pack_into(patched, at, opcode, regs & 0x0F, 0, reloc.offset)
            _INSN.pack_into(patched, at + INSN_SIZE, 0, 0, 0, 0)
        elif reloc.kind is RelocationKind.CALL:
            if opcode != _CALL:
                raise ObjectSpecError(f"{where} does not point at a call")
            _INSN.pack_into(patched, at, opcode, _PSEUDO_CALL << 4, 0, -1)
        else:
            if opcode != _CALL:
                raise ObjectSpecError(f"{where} does not point at a call")
            _INSN.pack_into(patched, at, opcode, _PSEUDO_KFUNC_CALL << 4, 0, -1)
    return bytes(patched)


# -- objects -------------------------------------------------------------------------------


@dataclass
class ObjectSpec:
    """A whole BPF object: entry programs, ``.text`` subprograms, maps, license and BTF."""

    programs: list[ProgramSpec] = field(default_factory=list)
    subprograms: list[ProgramSpec] = field(default_factory=list)
    maps: list[MapSpec] = field(default_factory=list)
    license: str = "GPL"
    btf: bytes | None = None

    def __post_init__(self) -> None:
        for program in self.programs:
            if program.is_subprogram:
                raise ObjectSpecError(f"{program.name!r} is in .text: list it in subprograms")
        for function in self.subprograms:
            if not function.is_subprogram:
                raise ObjectSpecError(
                    f"subprogram {function.name!r} must be in .text, not {function.section!r}"
                )
        _unique("function", [f.name for f in self.functions])
        _unique("map", [m.name for m in self.maps])
        functions = {f.name for f in self.functions}
        maps = {m.name for m in self.maps}
        for function in self.functions:
            for reloc in function.relocations:
                known = functions if reloc.kind is RelocationKind.CALL else maps
                if reloc.kind is not RelocationKind.KFUNC and reloc.target not in known:
                    raise ObjectSpecError(
                        f"{function.name!r} refers to {reloc.target!r}, which this object"
                        f" does not define"
                    )

    @property
    def functions(self) -> list[ProgramSpec]:
        """Entry programs, then subprograms."""
        return [*self.programs, *self.subprograms]

    def program(self, name: str) -> ProgramSpec:
        for program in self.programs:
            if program.name == name:
                return program
        raise KeyError(f"no program {name!r} in this object")

    def map(self, name: str) -> MapSpec:
        for map_spec in self.maps:
            if map_spec.name == name:
                return map_spec
        raise KeyError(f"no map {name!r} in this object")


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ObjectSpecError(f"{what} {name!r} is defined twice")
        seen.add(name)


# -- linking -------------------------------------------------------------------------------


@dataclass
class LinkedProgram:
    """An entry program with its subprograms appended, ready for BPF_PROG_LOAD.

    Calls and function addresses are resolved; ``map_relocations`` and
    ``kfunc_calls`` (instruction index, kernel function name) remain for the
    loader, which knows the descriptors and BTF ids.
    """

    name: str
    code: bytes
    map_relocations: list[MapRelocation]
    kfunc_calls: list[tuple[int, str]]
    func_info: list[FuncInfo]
    line_info: list[LineInfo]


def link_program(obj: ObjectSpec, name: str) -> LinkedProgram:
    """Append the subprograms ``name`` calls (transitively) and resolve the calls."""
    by_name = {f.name: f for f in obj.functions}
    entry = obj.program(name)
    order = [entry]
    starts = {entry.name: 0}
    total = entry.insn_count
    position = 0
    while position < len(order):
        for reloc in order[position].relocations:
            if reloc.kind is RelocationKind.CALL and reloc.target not in starts:
                callee = by_name[reloc.target]
                if not callee.is_subprogram:
                    raise ObjectSpecError(
                        f"{order[position].name!r} calls {callee.name!r}, an entry program;"
                        " only .text functions can be called"
                    )
                starts[callee.name] = total
                total += callee.insn_count
                order.append(callee)
        position += 1

    code = bytearray()
    map_relocations: list[MapRelocation] = []
    kfunc_calls: list[tuple[int, str]] = []
    func_info: list[FuncInfo] = []
    line_info: list[LineInfo] = []
    for function in order:
        base = starts[function.name]
        chunk = bytearray(function.code)
        for reloc in function.relocations:
            index = base + reloc.insn
            at = reloc.insn * INSN_SIZE
            if reloc.kind is RelocationKind.CALL:
                delta = starts[reloc.target] - index - 1
                opcode, regs, off, _ = _INSN.unpack_from(chunk, at)
                if opcode == _LD_IMM64:
                    regs = (regs & 0x0F) | _PSEUDO_FUNC << 4
                _INSN.pack_into(chunk, at, opcode, regs, off, delta)
            elif reloc.kind is RelocationKind.KFUNC:
                kfunc_calls.append((index, reloc.target))
            else:
                value = reloc.kind is RelocationKind.MAP_VALUE
                map_relocations.append(MapRelocation(index, reloc.target, value, reloc.offset))
        code += chunk
        func_info += [FuncInfo(base + r.insn, r.type_id) for r in function.func_info]
        line_info += [
            LineInfo(base + r.insn, r.file_name, r.line_text, r.line, r.column)
            for r in function.line_info
        ]
    if line_info:
        # The kernel wants a line record at the start of every function once
        # there are any; functions the source did not describe get an empty one.
        described = {r.insn for r in line_info}
        line_info += [
            LineInfo(starts[f.name], "", "", 0, 0) for f in order if starts[f.name] not in described
        ]
        line_info.sort(key=lambda r: r.insn)
    return LinkedProgram(name, bytes(code), map_relocations, kfunc_calls, func_info, line_info)


# -- from pykex.bpf instructions ------------------------------------------------------------


def program_from_instructions(
    name: str,
    section: str,
    instructions: Sequence[Instruction],
    func_info: Iterable[FuncInfo] = (),
) -> ProgramSpec:
    """A :class:`ProgramSpec` from :mod:`pykex.bpf` instructions.

    Map references become MAP or MAP_VALUE relocations (by the load's
    ``src``), named kfunc calls KFUNC relocations, and calls or function
    loads whose target is not a label of ``instructions`` CALL relocations
    to the function of that name. Source locations become line info (one
    record where the location changes).
    """
    labels = {insn.label for insn in instructions if insn.label is not None}
    prepared: list[Instruction] = []
    calls: list[tuple[int, str]] = []
    for index, insn in enumerate(instructions):
        if insn.refers_to_code and insn.target is not None and insn.target not in labels:
            if not (insn.is_local_call or insn.is_func_ref):
                raise ObjectSpecError(f"{name!r}: jump to undefined label {insn.target!r}")
            calls.append((index, insn.target))
            # Pointing at itself keeps the encoder's range check happy; the
            # relocation decides the real target. (A function load keeps its
            # offset in the low 32 bits only.)
            insn = insn.replace(target=None, imm=0xFFFFFFFF if insn.is_func_ref else -1)
        prepared.append(insn)
    try:
        encoded = encode(prepared)
    except BpfError as error:
        raise ObjectSpecError(f"program {name!r}: {error}") from None
    relocations = [Relocation(encoded.slots[i], RelocationKind.CALL, t) for i, t in calls]
    for found in encoded.relocations:
        insn = prepared[found.index]
        if found.kind is BpfRelocationKind.KFUNC:
            relocations.append(Relocation(found.slot, RelocationKind.KFUNC, found.name))
        elif found.kind is BpfRelocationKind.MAP and insn.src == PseudoSrc.MAP_VALUE:
            offset = insn.imm >> 32 & 0xFFFFFFFF
            relocations.append(
                Relocation(found.slot, RelocationKind.MAP_VALUE, found.name, offset)
            )
        elif found.kind is BpfRelocationKind.MAP and insn.src == PseudoSrc.MAP_FD:
            relocations.append(Relocation(found.slot, RelocationKind.MAP, found.name))
        else:
            raise ObjectSpecError(
                f"program {name!r}: instruction {found.index} refers to {found.name!r} in a way"
                " BPF objects cannot express"
            )
    line_info: list[LineInfo] = []
    previous: SourceLocation | None = None
    for slot, location in encoded.lines:
        if location != previous:
            line_info.append(
                LineInfo(
                    slot,
                    location.file,
                    location.text,
                    location.line,
                    min(location.column, (1 << COLUMN_BITS) - 1),
                )
            )
            previous = location
    relocations.sort(key=lambda r: r.insn)
    return ProgramSpec(name, section, encoded.code, relocations, list(func_info), line_info)
