"""Loading an :class:`~pykex.elf.spec.ObjectSpec` into the kernel, all or nothing.

The order is libbpf's: load the object's BTF (with any line-info strings it
lacks), create the maps (``.maps`` definitions with their BTF key/value
types, so spin locks work; global-data arrays filled with their initial
contents, ``.rodata`` frozen), then link and load every program with its
func and line info. If any step fails, everything created so far is closed
and the error propagates (a :class:`~pykex.kernel.errors.VerifierError`
keeps its log).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from pykex.btf import (
    Builder,
    Datasec,
    Kind,
    Spec,
    kernel_func_info,
    kernel_line_info,
    load_vmlinux,
)
from pykex.btf.errors import BTFError
from pykex.kernel import maps as kernel_maps
from pykex.kernel.fd import FD
from pykex.kernel.program import Program
from pykex.kernel.syscall import btf_load, map_update
from pykex.kernel.uapi import MapType, ProgType
from pykex.layout import Bytes, u8, u16, u32, u64

from .btfmerge import ExtendingBuilder, kernel_ready
from .errors import ObjectLoadError
from .reader import read_object
from .spec import (
    INSN_SIZE,
    LinkedProgram,
    MapSpec,
    ObjectSpec,
    SectionType,
    is_read_only_section,
    link_program,
)
from .writer import write_object

_INSN = struct.Struct("<BBhi")
_PERF_EVENT_ARRAY_SLOT = 4  # libbpf's default key and value size: a CPU index, a perf fd

TypePair = tuple[kernel_maps.TypeLike | None, kernel_maps.TypeLike | None]


@dataclass
class LoadedObject:
    """The kernel objects made from an ObjectSpec; closing it closes them all."""

    spec: ObjectSpec
    programs: dict[str, Program] = field(default_factory=dict)
    maps: dict[str, kernel_maps.Map] = field(default_factory=dict)
    btf_fd: FD | None = None

    def variable(self, name: str) -> bytes:
        """The current bytes of global variable ``name`` (read from its section's map)."""
        for map_spec in self.spec.maps:
            for var in map_spec.variables:
                if var.name == name:
                    loaded = self.maps[map_spec.name]
                    raw = loaded[0]
                    return bytes(raw)[var.offset : var.offset + var.size]
        raise KeyError(f"no global variable {name!r} in this object")

    def close(self) -> None:
        for program in self.programs.values():
            program.close()
        for loaded in self.maps.values():
            loaded.close()
        if self.btf_fd is not None:
            self.btf_fd.close()

    def __enter__(self) -> LoadedObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_object(
    spec: ObjectSpec,
    *,
    map_types: Mapping[str, TypePair] | None = None,
    log_level: int = 0,
) -> LoadedObject:
    """Create the maps and load the programs of ``spec``.

    A spec without complete BTF (one built in memory) gets it the way
    :func:`write_object` makes it, so func and line info reach the kernel.

    ``map_types`` gives layout types for a map's keys and values (by map
    name); otherwise keys and values of 1, 2, 4 or 8 bytes read as unsigned
    ints and others as bytes. ``log_level`` is passed to every program load.
    """
    spec = _with_complete_btf(spec)
    linked = {p.name: link_program(spec, p.name) for p in spec.programs}
    btf_spec = Spec.parse(spec.btf) if spec.btf else None
    line_strings: Builder | None = kernel_ready(spec.btf) if spec.btf else None
    line_info: dict[str, bytes] = {}
    if line_strings is not None:
        for name, program in linked.items():
            line_info[name] = kernel_line_info(program.line_info, line_strings)

    loaded = LoadedObject(spec)
    try:
        if isinstance(line_strings, ExtendingBuilder):
            loaded.btf_fd = btf_load(line_strings.merged())
        btf_fd = int(loaded.btf_fd) if loaded.btf_fd is not None else 0
        for map_spec in spec.maps:
            types = (map_types or {}).get(map_spec.name)
            loaded.maps[map_spec.name] = _create_map(map_spec, btf_spec, btf_fd, types)
        map_fds = {name: int(m.fd) for name, m in loaded.maps.items()}
        for program_spec in spec.programs:
            program = linked[program_spec.name]
            section = program_spec.section_type
            loaded.programs[program.name] = Program.load(
                section.prog_type,
                _with_kfunc_ids(program),
                name=program.name,
                license=spec.license,
                relocations=program.map_relocations,
                maps=map_fds,
                expected_attach_type=section.attach_type or 0,
                attach_btf_id=_attach_btf_id(section, program_spec.section),
                prog_flags=section.prog_flags,
                btf_fd=btf_fd,
                func_info=kernel_func_info(program.func_info) if btf_fd else b"",
                line_info=line_info.get(program.name, b"") if btf_fd else b"",
                log_level=log_level,
            )
    except BaseException:
        loaded.close()
        raise
    return loaded


def _with_complete_btf(spec: ObjectSpec) -> ObjectSpec:
    """``spec`` with BTF for every function, as the writer would give it.

    The kernel then gets the same func info (and so line info) as it would
    loading the written object; the writer stays the one place that
    completes BTF.
    """
    if spec.btf and all(any(r.insn == 0 for r in f.func_info) for f in spec.functions):
        return spec
    return read_object(write_object(spec))


def _default_type(size: int) -> kernel_maps.TypeLike | None:
    if size == 0:
        return None
    return {1: u8, 2: u16, 4: u32, 8: u64}.get(size) or Bytes[size]


def _create_map(
    map_spec: MapSpec, btf: Spec | None, btf_fd: int, types: TypePair | None
) -> kernel_maps.Map:
    key_size, value_size = map_spec.key_size, map_spec.value_size
    if map_spec.type == MapType.PERF_EVENT_ARRAY:
        key_size = key_size or _PERF_EVENT_ARRAY_SLOT
        value_size = value_size or _PERF_EVENT_ARRAY_SLOT
    key_type, value_type = types or (_default_type(key_size), _default_type(value_size))
    if map_spec.is_global_data:
        value_type = Bytes[value_size]
    key_id, value_id = map_spec.btf_key_type_id, map_spec.btf_value_type_id
    if map_spec.is_global_data and btf is not None:
        value_id = _datasec_id(btf, map_spec.name)
    created = kernel_maps.create_map(
        kernel_maps.MapSpec(
            type=MapType(map_spec.type),
            key_type=key_type,
            value_type=value_type,
            max_entries=map_spec.max_entries,
            name=map_spec.name,
            flags=map_spec.flags,
            btf_fd=btf_fd if key_id or value_id else 0,
            btf_key_type_id=key_id,
            btf_value_type_id=value_id,
        )
    )
    try:
        if map_spec.data is not None:
            map_update(int(created.fd), bytes(4), map_spec.data)
            if is_read_only_section(map_spec.name):
                created.freeze()  # lets the verifier treat .rodata as constants
    except BaseException:
        created.close()
        raise
    return created


def _datasec_id(btf: Spec, name: str) -> int:
    try:
        found = btf.find(name, Kind.DATASEC)
    except BTFError:
        return 0
    assert isinstance(found, Datasec)
    return found.id


def _with_kfunc_ids(program: LinkedProgram) -> bytes:
    """The program's code with each kfunc call carrying the kernel function's BTF id."""
    if not program.kfunc_calls:
        return program.code
    vmlinux = load_vmlinux()
    code = bytearray(program.code)
    for index, name in program.kfunc_calls:
        try:
            btf_id = vmlinux.kfunc_id(name)
        except BTFError as error:
            raise ObjectLoadError(f"program {program.name!r}: {error}") from None
        opcode, regs, _, _ = _INSN.unpack_from(code, index * INSN_SIZE)
        _INSN.pack_into(code, index * INSN_SIZE, opcode, regs, 0, btf_id)
    return bytes(code)


# Where the BTF id a tracing program attaches to comes from: its section's
# argument, looked up as this kind of vmlinux type with this prefix.
_ATTACH_TARGETS = {
    "tp_btf": ("btf_trace_", Kind.TYPEDEF),
    "fentry": ("", Kind.FUNC),
    "fexit": ("", Kind.FUNC),
    "fmod_ret": ("", Kind.FUNC),
    "fentry.s": ("", Kind.FUNC),
    "fexit.s": ("", Kind.FUNC),
    "lsm": ("bpf_lsm_", Kind.FUNC),
    "lsm.s": ("bpf_lsm_", Kind.FUNC),
}


def _attach_btf_id(section_type: SectionType, section: str) -> int:
    if section_type.prog_type not in (ProgType.TRACING, ProgType.LSM):
        return 0
    target = _ATTACH_TARGETS.get(section_type.prefix)
    if target is None:
        return 0
    _, _, argument = section.partition("/")
    if not argument:
        raise ObjectLoadError(f"section {section!r} does not name what to attach to")
    prefix, kind = target
    try:
        return load_vmlinux().find(prefix + argument, kind).id
    except BTFError as error:
        raise ObjectLoadError(f"section {section!r}: {error}") from None
