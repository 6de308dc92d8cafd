"""The benchmark report: a terminal table, a JSON document and a PNG chart."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bcc import BccResult
from .measure import OK, Settings, VersionResult, WorkloadResult

DASH = "-"


@dataclass
class Report:
    settings: Settings
    results: list[WorkloadResult]
    bcc: BccResult
    machine: dict[str, Any]
    date: str

    @property
    def floor_ns(self) -> float | None:
        """The empty C program's time: what a test run costs with no work in it."""
        for result in self.results:
            if result.workload.name == "empty":
                return result.c.median_ns
        return None

    @property
    def all_checks_passed(self) -> bool:
        return all(
            v.status in (OK, "not yet written") for r in self.results for v in (r.c, r.pykex)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "machine": self.machine,
            "settings": {
                "repeat": self.settings.repeat,
                "loads": self.settings.loads,
                "compiles": self.settings.compiles,
            },
            "floor_ns": self.floor_ns,
            "workloads": [r.as_dict() for r in self.results],
            "bcc": self.bcc.as_dict(),
        }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _clang_version() -> str | None:
    if shutil.which("clang") is None:
        return None
    done = subprocess.run(["clang", "--version"], capture_output=True, text=True)
    return done.stdout.splitlines()[0] if done.returncode == 0 and done.stdout else None


def describe_machine() -> dict[str, Any]:
    return {
        "kernel": platform.release(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "clang": _clang_version(),
        "python": platform.python_version(),
    }


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- the terminal table -----------------------------------------------------------------


def _number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}"


def _ns(version: VersionResult) -> str:
    if version.status != OK:
        return version.status
    return _number(version.median_ns, 1)


def _pair(c: float | int | None, py: float | int | None, digits: int = 0) -> str:
    return f"{_number(c, digits)} | {_number(py, digits)}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        numbers = zip(row[1:], widths[1:], strict=True)
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in numbers]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_report(report: Report) -> str:
    machine, settings = report.machine, report.settings
    lines = [
        f"pykex bench, {report.date}: Linux {machine['kernel']}, {machine['cpu']} "
        f"({machine['cpus']} CPUs), {machine['clang'] or 'no clang'}",
        f"{settings.repeat:,} runs per test run, {settings.loads} fresh loads per version "
        "(medians); nothing subtracted",
        f"floor (empty C program): {_number(report.floor_ns, 1)} ns/run",
        "",
    ]
    rows = []
    for r in report.results:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else DASH
        rows.append([r.workload.name, _ns(r.c), _ns(r.pykex), ratio])
    lines += _table(["workload", "C ns/run", "pykex ns/run", "pykex/C"], rows)
    lines += ["", "Code and loading, C | pykex:"]
    rows = []
    for r in report.results:
        c, py = r.c, r.pykex
        rows.append([
            r.workload.name,
            _pair(c.xlated_insns, py.xlated_insns),
            _pair(c.jited_insns, py.jited_insns),
            _pair(c.jited_bytes, py.jited_bytes),
            _pair(c.verified_insns, py.verified_insns),
            _pair(c.load_ms, py.load_ms, 1),
            _pair(c.source_to_loaded_ms, py.source_to_loaded_ms, 1),
        ])  # fmt: skip
    lines += _table(
        ["workload", "xlated insns", "jited insns", "jited bytes", "verified insns", "load ms",
         "source to loaded ms"],
        rows,
    )  # fmt: skip
    lines += [
        "",
        "source to loaded = compile (clang -O2 -target bpf | pykex build) + load",
        f"BCC, empty program, source to loaded: {report.bcc.describe()}",
    ]
    problems = [
        f"  {r.workload.name} ({v.language}): {v.error}"
        for r in report.results
        for v in (r.c, r.pykex)
        if v.status not in (OK, "not yet written")
    ]
    if problems:
        lines += ["", "FAILED:", *problems]
    return "\n".join(lines)


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report.as_dict(), indent=2) + "\n")


# -- the chart ----------------------------------------------------------------------------

CHART_NEEDS = (
    "the chart needs matplotlib, which the benchmark environment installs "
    "(pip install 'pykex[bench]', or bench/setup.sh)"
)


def write_chart(report: Report, path: Path) -> None:
    """Two panels: ns/run of each version, and the pykex/C ratio per workload."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError(CHART_NEEDS) from None

    names = [r.workload.name for r in report.results]
    positions = range(len(names))
    figure, (times, ratios) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    width = 0.4
    times.bar(
        [p - width / 2 for p in positions],
        [r.c.median_ns or 0 for r in report.results],
        width,
        label="C (clang -O2)",
    )
    times.bar(
        [p + width / 2 for p in positions],
        [r.pykex.median_ns or 0 for r in report.results],
        width,
        label="pykex",
    )
    if report.floor_ns:
        times.axhline(report.floor_ns, color="grey", linestyle="--", linewidth=0.8,
                      label="floor (empty program)")
    times.set_yscale("log")
    times.set_ylabel("ns per run (median, log scale)")
    times.legend()
    times.set_title(
        f"pykex vs C, BPF_PROG_TEST_RUN, Linux {report.machine['kernel']}, {report.date}"
    )
    measured = [
        (p, r.ratio) for p, r in zip(positions, report.results, strict=True) if r.ratio is not None
    ]
    ratios.bar([p for p, _ in measured], [ratio for _, ratio in measured], 0.6)
    ratios.axhline(1.0, color="black", linewidth=0.8)
    ratios.set_ylabel("pykex / C (lower is faster)")
    if not measured:
        ratios.text(
            0.5, 0.75, "pykex versions not yet written", ha="center", va="center",
            transform=ratios.transAxes,
        )  # fmt: skip
    ratios.set_xticks(list(positions), names, rotation=30, ha="right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
