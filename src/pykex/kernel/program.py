"""Loaded programs: load, inspect, test-run, pin.

A :class:`Program` owns the descriptor of one program in the kernel. It is
made from encoded instructions (``pykex.bpf`` produces them) plus the map
descriptors its 64-bit map loads refer to.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import syscall
from .fd import FD
from .fs import pin_path
from .uapi import AttachType, Cmd, ProgInfo, ProgType

# src_reg values of a 64-bit immediate load that refers to a map.
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
_LD_IMM64 = 0x18


@dataclass(frozen=True)
class MapRelocation:
    """Slot ``index`` is a 64-bit load of map ``name`` (its fd, or the address
    of its value at ``offset`` when ``value`` is set: global variables)."""

    index: int
    name: str
    value: bool = False
    offset: int = 0


def link_maps(
    code: bytes, relocations: Sequence[MapRelocation], maps: Mapping[str, int]
) -> bytes:
    """Write map descriptors into the 64-bit loads that refer to them."""
    patched = bytearray(code)
    for reloc in relocations:
        at = reloc.index * 8
        if patched[at] != _LD_IMM64 or at + 16 > len(patched):
            raise ValueError(f"relocation of map {reloc.name!r} at slot {reloc.index} "
                             "does not point at a 64-bit immediate load")
        if reloc.name not in maps:
            raise KeyError(f"program refers to map {reloc.name!r}, which was not created")
        src = PSEUDO_MAP_VALUE if reloc.value else PSEUDO_MAP_FD
        patched[at + 1] = (patched[at + 1] & 0x0F) | (src << 4)
        struct.pack_into("<i", patched, at + 4, int(maps[reloc.name]))
        struct.pack_into("<i", patched, at + 12, reloc.offset if reloc.value else 0)
    return bytes(patched)


@dataclass
class ProgramInfo:
    """What the kernel reports about a loaded program (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    type: ProgType
    name: str
    tag: str
    run_count: int
    run_time_ns: int
    verified_insns: int
    xlated_size: int  # bytes of the program after the verifier's rewrites
    jited_size: int  # bytes of native code
    load_time_ns: int  # since boot
    btf_id: int
    map_ids: list[int] = field(default_factory=list)

    @property
    def xlated_insns(self) -> int:
        return self.xlated_size // 8


class Program:
    """A program loaded into the kernel."""

    def __init__(self, fd: FD, prog_type: ProgType, name: str = "", verifier_log: str = ""):
        self.fd = fd
        self.type = ProgType(prog_type)
        self.name = name
        self.verifier_log = verifier_log

    @classmethod
    def load(
        cls,
        prog_type: ProgType,
        code: bytes,
        *,
        name: str = "",
        license: str = "GPL",
        relocations: Sequence[MapRelocation] = (),
        maps: Mapping[str, int] | None = None,
        expected_attach_type: AttachType | int = 0,
        attach_btf_id: int = 0,
        prog_flags: int = 0,
        btf_fd: int = 0,
        func_info: bytes = b"",
        line_info: bytes = b"",
        kfunc_fds: Sequence[int] | None = None,
        log_level: int = 0,
    ) -> Program:
        """Load ``code`` (encoded instructions), linking ``maps`` by name.

        ``log_level`` 0 asks for a log only when loading fails; 1 or 2 keep
        the verifier's log of a successful load in :attr:`verifier_log`.
        """
        if relocations:
            code = link_maps(code, relocations, maps or {})
        result = syscall.prog_load(
            int(prog_type),
            code,
            license=license,
            name=name,
            expected_attach_type=int(expected_attach_type),
            attach_btf_id=attach_btf_id,
            prog_flags=prog_flags,
            prog_btf_fd=btf_fd,
            func_info=func_info,
            line_info=line_info,
            fd_array=list(kfunc_fds) if kfunc_fds else None,
            log_level=log_level,
            feature=f"program type {ProgType(prog_type).name.lower()}",
        )
        return cls(result.fd, prog_type, name, result.log)

    @classmethod
    def from_pin(cls, path: str) -> Program:
        fd = syscall.obj_get(pin_path(path))
        info = syscall.obj_info(int(fd), ProgInfo())
        return cls(fd, ProgType(info.type), info.name.decode())

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        fd = syscall.fd_by_id(Cmd.PROG_GET_FD_BY_ID, prog_id)
        info = syscall.obj_info(int(fd), ProgInfo())
        return cls(fd, ProgType(info.type), info.name.decode())

    def info(self) -> ProgramInfo:
        raw = syscall.obj_info(int(self.fd), ProgInfo())
        map_ids: list[int] = []
        if raw.nr_map_ids:
            ids = (ctypes.c_uint32 * raw.nr_map_ids)()
            again = ProgInfo(nr_map_ids=raw.nr_map_ids, map_ids=ctypes.addressof(ids))
            syscall.obj_info(int(self.fd), again)
            map_ids = list(ids)
        return ProgramInfo(
            id=raw.id,
            type=ProgType(raw.type),
            name=raw.name.decode(),
            tag=bytes(raw.tag).hex(),
            run_count=raw.run_cnt,
            run_time_ns=raw.run_time_ns,
            verified_insns=raw.verified_insns,
            xlated_size=raw.xlated_prog_len,
            jited_size=raw.jited_prog_len,
            load_time_ns=raw.load_time,
            btf_id=raw.btf_id,
            map_ids=map_ids,
        )

    def test_run(
        self,
        data: bytes = b"",
        *,
        repeat: int = 1,
        ctx: bytes = b"",
        ctx_out_size: int | None = None,
    ) -> syscall.TestRunResult:
        """Run the program on ``data`` (BPF_PROG_TEST_RUN): retval, data_out, duration."""
        return syscall.prog_test_run(
            int(self.fd), data, repeat=repeat, ctx=ctx, ctx_out_size=ctx_out_size
        )

    def pin(self, path: str) -> str:
        """Pin under bpffs (relative paths go under /sys/fs/bpf); returns the path."""
        full = pin_path(path)
        syscall.obj_pin(int(self.fd), full)
        return full

    def close(self) -> None:
        self.fd.close()

    def __enter__(self) -> Program:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Program {self.name or '?'} {self.type.name.lower()} {self.fd!r}>"
