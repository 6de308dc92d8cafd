"""The two versions of a workload: building each from source and loading it, many times.

C: ``clang -O2 -g -target bpf`` (libbpf style: BTF-defined maps, global
data), loaded by :mod:`pykex.elf` with no libbpf underneath. pykex: the
extension's ``prog.py`` compiled by :class:`pykex.compiler.Compilation` and
loaded by :func:`pykex.load`. Both give an :class:`Instance`: the kernel
program and its maps, reached the same way (by descriptor), so a workload's
check reads both versions' maps with the same code.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pykex.kernel import syscall
from pykex.kernel.cpus import possible_cpu_count
from pykex.kernel.maps import read_map_info
from pykex.kernel.program import Program
from pykex.kernel.ringbuf import RingBuffer
from pykex.kernel.uapi import MapType

from .workloads import Workload

C, PYKEX = "C", "pykex"
NOT_WRITTEN = "not yet written"
_PER_CPU_MAPS = (MapType.PERCPU_ARRAY, MapType.PERCPU_HASH, MapType.LRU_PERCPU_HASH)


class BuildError(Exception):
    """A version's source did not compile."""


class FdMaps:
    """A loaded version's maps by name, read and written as raw bytes."""

    def __init__(
        self, fds: Mapping[str, int], variable: Callable[[str], bytes] | None = None
    ) -> None:
        self._fds = dict(fds)
        self._variable = variable

    def _fd(self, map_name: str) -> int:
        try:
            return self._fds[map_name]
        except KeyError:
            known = ", ".join(sorted(self._fds)) or "none"
            raise KeyError(f"this version has no map {map_name!r} (its maps: {known})") from None

    def lookup(self, map_name: str, key: bytes) -> bytes | None:
        fd = self._fd(map_name)
        return syscall.map_lookup(fd, key, read_map_info(fd).value_size)

    def update(self, map_name: str, key: bytes, value: bytes) -> None:
        syscall.map_update(self._fd(map_name), key, value)

    def per_cpu(self, map_name: str, key: bytes) -> list[bytes]:
        """One value per possible CPU."""
        fd = self._fd(map_name)
        info = read_map_info(fd)
        if info.type not in _PER_CPU_MAPS:
            raise TypeError(f"map {map_name!r} is not a per-CPU map")
        slot = (info.value_size + 7) & ~7  # the kernel pads each CPU's value to 8 bytes
        raw = syscall.map_lookup(fd, key, slot * possible_cpu_count()) or b""
        return [raw[at : at + info.value_size] for at in range(0, len(raw), slot)]

    def records(self, map_name: str) -> list[bytes]:
        """Every record waiting in ring buffer ``map_name`` (consumed)."""
        with RingBuffer(self._fd(map_name)) as ring:
            return ring.drain()

    def variable(self, name: str) -> bytes:
        if self._variable is None:
            raise LookupError("this version's loader does not expose global variables")
        return self._variable(name)


@dataclass
class Instance:
    """One load of one version: the program to run and its maps."""

    program: Program
    maps: FdMaps
    load_seconds: float
    close: Callable[[], None]


@dataclass
class Build:
    """A version compiled once and loadable any number of times."""

    language: str
    source: Path
    compile_seconds: float
    load: Callable[[], Instance]
    recompile: Callable[[], float]  # compiles from source again; returns the seconds taken


# -- C --------------------------------------------------------------------------------


def clang_command(source: Path, output: Path) -> list[str]:
    """How the C baselines are compiled: libbpf's usual flags."""
    return [
        "clang", "-O2", "-g", "-target", "bpf",
        # asm/types.h, which linux/types.h includes, lives in the multiarch directory.
        f"-I/usr/include/{platform.machine()}-linux-gnu",
        "-c", str(source), "-o", str(output),
    ]  # fmt: skip


def compile_c(source: Path, directory: Path) -> tuple[bytes, float]:
    """Compile ``source`` with clang; the object's bytes and the seconds clang took."""
    if shutil.which("clang") is None:
        raise BuildError("clang is not installed (apt-get install clang)")
    output = directory / f"{source.parent.name}.o"
    started = time.perf_counter()
    done = subprocess.run(clang_command(source, output), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BuildError(f"clang failed on {source}:\n{done.stderr.strip()}")
    return output.read_bytes(), elapsed


def build_c(workload: Workload, directory: Path) -> Build:
    from pykex.elf import load_object, read_object

    data, seconds = compile_c(workload.c_source, directory)

    def load() -> Instance:
        started = time.perf_counter()
        loaded = load_object(read_object(data))
        elapsed = time.perf_counter() - started
        try:
            program = loaded.programs[workload.function]
        except KeyError:
            loaded.close()
            raise BuildError(f"{workload.c_source} has no program {workload.function!r}") from None
        fds = {name: int(m.fd) for name, m in loaded.maps.items()}
        return Instance(program, FdMaps(fds, loaded.variable), elapsed, loaded.close)

    def recompile() -> float:
        return compile_c(workload.c_source, directory)[1]

    return Build(C, workload.c_source, seconds, load, recompile)


# -- pykex ----------------------------------------------------------------------------


def build_pykex(workload: Workload) -> Build | None:
    """The pykex version, compiled; None when ``prog.py`` is not written yet."""
    source = workload.pykex_source
    if not source.exists():
        return None
    import pykex
    from pykex.compiler import Compilation

    def compiled() -> tuple[Compilation, float]:
        started = time.perf_counter()
        compilation = Compilation(source)
        compilation.elf  # noqa: B018 -- every stage, as `pykex build` runs them
        return compilation, time.perf_counter() - started

    first, seconds = compiled()

    def load() -> Instance:
        started = time.perf_counter()
        extension = pykex.load(first)
        elapsed = time.perf_counter() - started
        try:
            program = extension.programs[workload.function].program
        except KeyError:
            extension.close()
            raise BuildError(f"{source} has no program {workload.function!r}") from None
        fds = {name: int(m.fd) for name, m in extension.maps.items()}
        variable = getattr(extension, "variable", None)
        return Instance(program, FdMaps(fds, variable), elapsed, extension.close)

    return Build(PYKEX, source, seconds, load, lambda: compiled()[1])
