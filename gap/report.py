"""Build every gap case, load it, and print what this kernel's verifier says.

Usage: ``python -m gap.report [--bpftool] [--case NN]`` (or ``python gap/report.py``).

For each case: the C program's outcome with the verifier's one-line reason,
the workaround's outcome (whether its packet checks pass, its programs,
tail calls and processed instructions) and the lines of C of both. The
``pykex`` column is filled once a case has a ``prog.py``. ``--bpftool`` also
loads every object with bpftool (libbpf) and flags any disagreement.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gap.corpus import CATEGORIES, Case, LoadOutcome, bpftool_load, build, c_lines, load, load_cases

# Loads of rejected programs spend seconds in the verifier and release the
# GIL while they do, so two run at once (the machine's core count).
WORKERS = 2


@dataclass
class CaseResult:
    case: Case
    c: LoadOutcome
    c_lines: int
    c_object: Path
    workaround: LoadOutcome | None = None
    workaround_lines: int | None = None
    workaround_object: Path | None = None
    bpftool_disagrees: list[str] | None = None

    @property
    def as_expected(self) -> bool:
        """The C program does what the metadata says, and the workaround loads and behaves."""
        case = self.case
        if case.status == "rejected":
            c_ok = not self.c.loaded and case.expected_error in self.c.error
        else:
            c_ok = self.c.loaded and not self.c.check_failures
        w = self.workaround
        return c_ok and (w is None or (w.loaded and not w.check_failures))

    def objects(self) -> list[tuple[Path, LoadOutcome]]:
        """Each built object with pykex's outcome for it."""
        pairs = [(self.c_object, self.c)]
        if self.workaround_object is not None and self.workaround is not None:
            pairs.append((self.workaround_object, self.workaround))
        return pairs


def measure(case: Case, out_dir: Path) -> CaseResult:
    """Build and load ``case``'s C program and workaround (with packet checks)."""
    c_obj = build(case.prog_c, out_dir)
    # A C program that loads is a closed gap: its checks must hold too.
    c_outcome = load(c_obj, case if case.status == "loads" else None)
    result = CaseResult(case, c_outcome, c_lines(case.prog_c), c_obj)
    if case.workaround_c is not None:
        result.workaround_object = build(case.workaround_c, out_dir)
        result.workaround = load(result.workaround_object, case)
        result.workaround_lines = c_lines(case.workaround_c)
    return result


def bpftool_disagreements(obj: Path, ours: LoadOutcome) -> list[str]:
    """Load ``obj`` with bpftool; a message if it disagrees with pykex's outcome."""
    independent = bpftool_load(obj)
    if independent.loaded == ours.loaded:
        return []
    return [f"{obj.name}: bpftool says {independent.verdict} ({independent.error})"]


def measure_all(
    cases: list[Case], out_dir: Path, *, with_bpftool: bool = False
) -> list[CaseResult]:
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda c: measure(c, out_dir), cases))
        if with_bpftool:
            for result in results:
                result.bpftool_disagrees = []
            checks = [(r, obj, ours) for r in results for obj, ours in r.objects()]
            found = pool.map(lambda item: bpftool_disagreements(item[1], item[2]), checks)
            for (result, _, _), disagreement in zip(checks, found, strict=True):
                result.bpftool_disagrees += disagreement
    return results


def _workaround_cell(result: CaseResult) -> str:
    w = result.workaround
    if w is None:
        return "-"
    if not w.loaded:
        return f"REJECTED: {w.error}"
    assert result.case.workaround_c is not None
    tail_calls = result.case.workaround_c.read_text().count("bpf_tail_call(")
    parts = [f"{len(w.processed)} prog" + ("s" if len(w.processed) > 1 else "")]
    if tail_calls:
        parts.append(f"{tail_calls} tail call" + ("s" if tail_calls > 1 else ""))
    parts.append(f"{sum(w.processed.values()):,} insns")
    state = "loads" if not w.check_failures else "loads, CHECKS FAIL"
    return f"{state} ({', '.join(parts)})"


def _c_cell(result: CaseResult) -> str:
    if result.c.loaded:
        return "loads (gap closed)"
    return f"rejected: {result.c.error}"


def _pykex_cell(case: Case) -> str:
    return "prog.py (not compiled yet)" if case.prog_py is not None else "-"


def format_table(results: list[CaseResult], *, error_width: int = 72) -> str:
    header = ("case", "cat", "C program", "workaround", "lines C/wa", "pykex")
    rows = []
    for r in results:
        c_cell = _c_cell(r)
        if len(c_cell) > error_width:
            c_cell = c_cell[: error_width - 3] + "..."
        lines = f"{r.c_lines}/{r.workaround_lines}" if r.workaround_lines else f"{r.c_lines}/-"
        mark = "" if r.as_expected else " !"
        rows.append((r.case.name + mark, str(r.case.category), c_cell, _workaround_cell(r),
                     lines, _pykex_cell(r.case)))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)


def format_notes(results: list[CaseResult]) -> str:
    out = ["", "Categories: " + "; ".join(f"{k} {v}" for k, v in CATEGORIES.items()), ""]
    for r in results:
        if r.case.workaround_cost:
            out.append(f"{r.case.name}: workaround cost: {r.case.workaround_cost}")
        for failure in (r.workaround.check_failures if r.workaround else []) + r.c.check_failures:
            out.append(f"{r.case.name}: {failure}")
        for disagreement in r.bpftool_disagrees or []:
            out.append(f"{r.case.name}: {disagreement}")
    rejected = sum(1 for r in results if not r.c.loaded)
    unexpected = sum(1 for r in results if not r.as_expected)
    out.append(f"\n{rejected} of {len(results)} safe C programs rejected by this kernel's verifier;"
               f" {unexpected} case(s) not as recorded (marked !).")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpftool", action="store_true",
                        help="also load every object with bpftool")
    parser.add_argument("--case", action="append", default=[],
                        help="only cases whose directory starts with this (repeatable)")
    args = parser.parse_args(argv)
    cases = [c for c in load_cases()
             if not args.case or any(c.name.startswith(prefix) for prefix in args.case)]
    with tempfile.TemporaryDirectory(prefix="pykex-gap-") as out_dir:
        results = measure_all(cases, Path(out_dir), with_bpftool=args.bpftool)
    print(format_table(results))
    print(format_notes(results))
    return 0 if all(r.as_expected and not r.bpftool_disagrees for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
