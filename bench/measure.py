"""Timing both versions of a workload, alternating, over many fresh loads.

The JIT places each program's code at a random offset, and tight loops run
up to twice as fast or slow depending on where they land; so every round
loads each version afresh, checks it, and times it with one
BPF_PROG_TEST_RUN of ``repeat`` runs (the kernel reports the mean per run).
Rounds alternate the order (A B, B A, ...) so drift in the machine's speed
affects both versions alike. The figure reported is the median over rounds.
"""

from __future__ import annotations

import ctypes
import platform
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pykex.kernel import syscall
from pykex.kernel.program import Program
from pykex.kernel.uapi import ProgInfo

from .versions import NOT_WRITTEN, PYKEX, Build, C, Instance, build_c, build_pykex
from .workloads import Workload, expect

CHECK_RUNS = 3  # runs on the workload's packet before its map contents are checked
OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class Settings:
    repeat: int = 1_000_000  # runs per test run
    loads: int = 20  # fresh loads (rounds) per version
    compiles: int = 3  # compilations timed per version


@dataclass
class VersionResult:
    """What was measured of one version of one workload."""

    language: str
    status: str = OK
    error: str = ""
    check: str = ""
    ns_per_run: list[float] = field(default_factory=list)  # one figure per load
    load_seconds: list[float] = field(default_factory=list)
    compile_seconds: list[float] = field(default_factory=list)
    xlated_insns: int | None = None
    jited_bytes: int | None = None
    jited_insns: int | None = None  # native instructions (counted with llvm-mc when present)
    verified_insns: int | None = None

    def fail(self, stage: str, error: BaseException) -> None:
        self.status = FAILED
        self.error = f"{stage}: {error}"
        if stage == "check":
            self.check = str(error)

    @property
    def median_ns(self) -> float | None:
        return statistics.median(self.ns_per_run) if self.ns_per_run else None

    @property
    def load_ms(self) -> float | None:
        return statistics.median(self.load_seconds) * 1e3 if self.load_seconds else None

    @property
    def compile_ms(self) -> float | None:
        return statistics.median(self.compile_seconds) * 1e3 if self.compile_seconds else None

    @property
    def source_to_loaded_ms(self) -> float | None:
        if self.load_ms is None or self.compile_ms is None:
            return None
        return self.compile_ms + self.load_ms

    def as_dict(self) -> dict[str, Any]:
        quartiles = (
            statistics.quantiles(self.ns_per_run, n=4) if len(self.ns_per_run) > 1 else None
        )
        return {
            "status": self.status,
            "error": self.error or None,
            "check": self.check or None,
            "ns_per_run": self.median_ns,
            "ns_per_run_quartiles": [quartiles[0], quartiles[2]] if quartiles else None,
            "ns_per_run_each_load": self.ns_per_run,
            "xlated_insns": self.xlated_insns,
            "jited_bytes": self.jited_bytes,
            "jited_insns": self.jited_insns,
            "verified_insns": self.verified_insns,
            "load_ms": self.load_ms,
            "compile_ms": self.compile_ms,
            "source_to_loaded_ms": self.source_to_loaded_ms,
        }


@dataclass
class WorkloadResult:
    workload: Workload
    c: VersionResult
    pykex: VersionResult

    @property
    def ratio(self) -> float | None:
        """pykex time over C time (below 1: pykex is faster)."""
        c, py = self.c.median_ns, self.pykex.median_ns
        if c is None or py is None or c == 0:
            return None
        return py / c

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.workload.name,
            "title": self.workload.title,
            "packet_bytes": len(self.workload.packet),
            "expected_retval": self.workload.retval,
            "c": self.c.as_dict(),
            "pykex": self.pykex.as_dict(),
            "ratio": self.ratio,
        }


def verify(instance: Instance, workload: Workload) -> None:
    """Fill the maps, run the workload's packet and cases, and check what came out."""
    workload.prepare(instance.maps)
    result = instance.program.test_run(workload.packet, repeat=CHECK_RUNS)
    expect("the verdict", result.retval, workload.retval)
    workload.check(instance.maps, CHECK_RUNS)
    for case in workload.cases:
        outcome = instance.program.test_run(case.packet, repeat=1)
        expect(f"the verdict for {case.label}", outcome.retval, case.retval)


def time_runs(instance: Instance, workload: Workload, repeat: int) -> float:
    """Mean nanoseconds per run over ``repeat`` runs, as the kernel measured them."""
    remaining, total_ns = repeat, 0.0
    per_call = workload.runs_per_call or repeat
    while remaining:
        runs = min(remaining, per_call)
        result = instance.program.test_run(workload.packet, repeat=runs)
        # Every timed call must still compute the right verdict (a full ring
        # buffer, say, would take a cheaper failure path).
        expect("the verdict of a timed run", result.retval, workload.retval)
        total_ns += result.duration_ns * runs
        remaining -= runs
        if remaining:
            workload.between_calls(instance.maps)
    return total_ns / repeat


def native_instructions(program: Program, jited_bytes: int) -> int | None:
    """How many machine instructions the JIT emitted (None without llvm-mc)."""
    tool = shutil.which("llvm-mc")
    if tool is None or jited_bytes == 0:
        return None
    image = (ctypes.c_uint8 * jited_bytes)()
    request = ProgInfo(jited_prog_len=jited_bytes, jited_prog_insns=ctypes.addressof(image))
    syscall.obj_info(int(program.fd), request)
    listing = subprocess.run(
        [tool, "--disassemble", f"-triple={platform.machine()}"],
        input=" ".join(f"0x{byte:02x}" for byte in image),
        capture_output=True,
        text=True,
    )
    if listing.returncode != 0:
        return None
    return sum(
        1
        for line in listing.stdout.splitlines()
        if line.startswith("\t") and not line.startswith("\t.")
    )


def _record_code(result: VersionResult, program: Program) -> None:
    info = program.info()
    result.xlated_insns = info.xlated_insns
    result.jited_bytes = info.jited_size
    result.verified_insns = info.verified_insns
    result.jited_insns = native_instructions(program, info.jited_size)


def _one_round(build: Build, result: VersionResult, workload: Workload, repeat: int) -> None:
    stage = "load"
    try:
        instance = build.load()
    except Exception as error:
        result.fail(stage, error)
        return
    try:
        if not result.load_seconds:
            _record_code(result, instance.program)
        result.load_seconds.append(instance.load_seconds)
        stage = "check"
        verify(instance, workload)
        result.check = "passed"
        stage = "timed run"
        result.ns_per_run.append(time_runs(instance, workload, repeat))
    except Exception as error:
        result.fail(stage, error)
    finally:
        instance.close()


def _compile(
    language: str, make: Callable[[], Build | None], settings: Settings
) -> tuple[Build | None, VersionResult]:
    result = VersionResult(language)
    try:
        build = make()
    except Exception as error:
        result.fail("compile", error)
        return None, result
    if build is None:
        result.status = NOT_WRITTEN
        return None, result
    result.compile_seconds.append(build.compile_seconds)
    try:
        for _ in range(settings.compiles - 1):
            result.compile_seconds.append(build.recompile())
    except Exception as error:
        result.fail("compile", error)
        return None, result
    return build, result


def measure_workload(
    workload: Workload, settings: Settings, progress: Callable[[str], None] = lambda _: None
) -> WorkloadResult:
    """Compile both versions, then time them (see :func:`time_versions`)."""
    with tempfile.TemporaryDirectory(prefix="pykex-bench-") as scratch:
        c_build, c_result = _compile(C, lambda: build_c(workload, Path(scratch)), settings)
        py_build, py_result = _compile(PYKEX, lambda: build_pykex(workload), settings)
        candidates = ((py_build, py_result), (c_build, c_result))
        versions = [(build, result) for build, result in candidates if build is not None]
        time_versions(workload, versions, settings, progress)
    return WorkloadResult(workload, c_result, py_result)


def time_versions(
    workload: Workload,
    versions: list[tuple[Build, VersionResult]],
    settings: Settings,
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    """``settings.loads`` rounds; in each, every version still standing is loaded
    afresh, checked and timed, in the order A B, then B A, and so on."""
    for round_number in range(settings.loads):
        order = versions if round_number % 2 == 0 else versions[::-1]
        for build, result in order:
            if result.status == OK:
                _one_round(build, result, workload, settings.repeat)
        progress(f"{workload.name}: round {round_number + 1}/{settings.loads}")
