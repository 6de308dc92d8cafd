"""Build every gap case, load it, and print what this kernel's verifier says.

Usage: ``python -m gap.report [--bpftool] [--markdown] [--case NN]`` (or
``python gap/report.py``).

For each case: the C program's outcome with the verifier's one-line reason,
the workaround's outcome (whether its packet checks pass, its programs,
tail calls and processed instructions), the pykex program's outcome (checked,
loaded, packet checks in the kernel and in host mode, processed instructions,
load time) and the lines of C of both C files beside the lines of Python.
``--bpftool`` also loads every object with bpftool (libbpf) and flags any
disagreement; ``--markdown`` prints the whole of ``docs/gap.md`` instead of
the plain table.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gap.corpus import (
    CATEGORIES,
    Case,
    LoadOutcome,
    PykexOutcome,
    bpftool_load,
    build,
    c_lines,
    load,
    load_cases,
    measure_pykex,
    python_lines,
)

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
    pykex: PykexOutcome | None = None
    python_lines: int | None = None

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
    cases: list[Case], out_dir: Path, *, with_bpftool: bool = False, with_pykex: bool = True
) -> list[CaseResult]:
    results = _measure_c(cases, out_dir, with_bpftool=with_bpftool)
    if with_pykex:
        # Sequential: each takes milliseconds, and the compiler is not shared across threads.
        for result in results:
            if result.case.prog_py is not None:
                result.pykex = measure_pykex(result.case)
                result.python_lines = python_lines(result.case.prog_py)
    return results


def _measure_c(cases: list[Case], out_dir: Path, *, with_bpftool: bool) -> list[CaseResult]:
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


def workaround_shape(result: CaseResult) -> tuple[int, int]:
    """How many programs the workaround loads and how many tail calls it makes."""
    w, source = result.workaround, result.case.workaround_c
    if w is None or source is None:
        return 0, 0
    return len(w.processed), source.read_text().count("bpf_tail_call(")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("s" if count != 1 else "")


def _workaround_cell(result: CaseResult) -> str:
    w = result.workaround
    if w is None:
        return "-"
    if not w.loaded:
        return f"REJECTED: {w.error}"
    programs, tail_calls = workaround_shape(result)
    parts = [_plural(programs, "prog")]
    if tail_calls:
        parts.append(_plural(tail_calls, "tail call"))
    parts.append(f"{sum(w.processed.values()):,} insns")
    state = "loads" if not w.check_failures else "loads, CHECKS FAIL"
    return f"{state} ({', '.join(parts)})"


def _c_cell(result: CaseResult) -> str:
    if result.c.loaded:
        return "loads (gap closed)"
    return f"rejected: {result.c.error}"


def expected_check(case: Case) -> str | None:
    """The diagnostic ``pykex check`` gives ``prog.py`` by design (``[pykex]
    expected_check`` in ``case.toml``): a kernel rule pykex states, not lifts."""
    path = case.directory / "case.toml"
    if not path.exists():  # a result made up without its directory
        return None
    with path.open("rb") as f:
        return tomllib.load(f).get("pykex", {}).get("expected_check")


def refused_by_design(result: CaseResult) -> bool:
    p = result.pykex
    wanted = expected_check(result.case)
    return p is not None and p.stage == "check" and wanted is not None and p.error.endswith(
        f": {wanted}")


def _pykex_cell(result: CaseResult) -> str:
    p = result.pykex
    if p is None:
        return "-"
    if refused_by_design(result):
        return f"refused by design (the kernel's rule, stated at compile time): {p.error}"
    if p.stage == "check":
        return f"pykex check: {p.error}"
    if p.stage == "compile":
        return f"compile error: {p.error}"
    if p.stage == "load":
        return f"REJECTED (pykex bug): {p.error}"
    failing = [mode for mode, failures in (("kernel", p.kernel_failures),
                                            ("host", p.host_failures)) if failures]
    state = "behaves" if not failing else f"loads, CHECKS FAIL ({', '.join(failing)})"
    insns = f"{sum(p.processed.values()):,} insns"
    return f"{state} ({_plural(len(p.processed), 'prog')}, {insns}, {p.load_ms:.1f} ms)"


def _lines_cell(result: CaseResult) -> str:
    def count(n: int | None) -> str:
        return "-" if n is None else str(n)

    return f"{result.c_lines}/{count(result.workaround_lines)}/{count(result.python_lines)}"


HEADER = ("case", "cat", "C program", "workaround", "pykex", "lines C/wa/py")


def table_rows(
    results: list[CaseResult], *, error_width: int | None = None
) -> list[tuple[str, ...]]:
    rows = []
    for r in results:
        c_cell = _c_cell(r)
        if error_width is not None and len(c_cell) > error_width:
            c_cell = c_cell[: error_width - 3] + "..."
        mark = "" if r.as_expected else " !"
        rows.append((r.case.name + mark, str(r.case.category), c_cell, _workaround_cell(r),
                     _pykex_cell(r), _lines_cell(r)))
    return rows


def format_table(results: list[CaseResult], *, error_width: int = 72) -> str:
    rows = table_rows(results, error_width=error_width)
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    out = [" | ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)


def pykex_problems(results: list[CaseResult]) -> list[str]:
    """One line per case whose pykex program does not load and behave."""
    out = []
    for r in results:
        p = r.pykex
        if p is None or p.behaves or refused_by_design(r):
            continue
        details = [p.error] if p.error else []
        details += [f"kernel {f}" for f in p.kernel_failures]
        details += [f"host {f}" for f in p.host_failures]
        out.append(f"{r.case.name}: pykex stops at {p.stage}: {'; '.join(details)}")
    return out


def summary(results: list[CaseResult]) -> str:
    rejected = sum(1 for r in results if not r.c.loaded)
    unexpected = sum(1 for r in results if not r.as_expected)
    written = [r for r in results if r.pykex is not None]
    behaving = sum(1 for r in written if r.pykex is not None and r.pykex.behaves)
    by_design = [r.case.name for r in written if refused_by_design(r)]
    refused = (f" {len(by_design)} refused at compile time by design ({', '.join(by_design)})."
               if by_design else "")
    return (f"{rejected} of {len(results)} safe C programs rejected by this kernel's verifier;"
            f" {unexpected} case(s) not as recorded (marked !). pykex: {behaving} of"
            f" {len(written)} programs load and behave in the kernel and in host mode."
            + refused)


def line_totals(results: list[CaseResult]) -> str:
    """Lines of C against lines of Python over the cases whose pykex program behaves."""
    behaving = [r for r in results if r.pykex is not None and r.pykex.behaves]
    programs = sum(r.c_lines for r in behaving)
    fixed = [r for r in behaving if r.workaround_lines is not None]
    return (f"Over the {_plural(len(behaving), 'case')} whose pykex program behaves: "
            f"{programs} lines of C in the programs, "
            f"{sum(r.workaround_lines or 0 for r in fixed)} in "
            f"{_plural(len(fixed), 'workaround')}, "
            f"{sum(r.python_lines or 0 for r in behaving)} of Python.")


def format_notes(results: list[CaseResult]) -> str:
    out = ["", "Categories: " + "; ".join(f"{k} {v}" for k, v in CATEGORIES.items()), ""]
    for r in results:
        if r.case.workaround_cost:
            out.append(f"{r.case.name}: workaround cost: {r.case.workaround_cost}")
        for failure in (r.workaround.check_failures if r.workaround else []) + r.c.check_failures:
            out.append(f"{r.case.name}: {failure}")
        for disagreement in r.bpftool_disagrees or []:
            out.append(f"{r.case.name}: {disagreement}")
    out += ["", *pykex_problems(results)]
    out += ["", summary(results), line_totals(results)]
    return "\n".join(out)


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _clang_version() -> str:
    try:
        result = subprocess.run(["clang", "--version"], capture_output=True, text=True,
                                check=False)
    except OSError:
        return "clang (version unknown)"
    return result.stdout.splitlines()[0].strip() if result.stdout else "clang (version unknown)"


def format_markdown(results: list[CaseResult], *, when: datetime.date | None = None) -> str:
    """``docs/gap.md``: the table of a real run, with its date, kernel and compiler."""
    day = (when or datetime.date.today()).isoformat()
    rows = table_rows(results)
    out = [
        "# The language-verifier gap, measured",
        "",
        "Generated by `python -m gap.report --markdown` (see `gap/README.md`) on "
        f"{day}, Linux {platform.release()} ({platform.machine()}), {_clang_version()}.",
        "",
        "Each case is a safe XDP program written the way a C programmer would, which "
        "this kernel's verifier rejects; the workaround C authors use, and what it costs; "
        "and the same behaviour written as a plain pykex program. Both the workaround and "
        "the pykex program must pass the case's packet checks (`case.toml`); the pykex "
        "program in the kernel (`BPF_PROG_TEST_RUN`) and in host mode (`pykex.load_host`).",
        "",
        "- *C program*: the verifier's one-line reason for rejecting `prog.c`.",
        "- *workaround*: programs loaded, tail calls made and instructions the verifier "
        "processed (all programs).",
        "- *pykex*: `behaves` when `pykex check` accepts `prog.py`, it loads, and every "
        "packet check holds in both modes; then its programs, the instructions the "
        "verifier processed and the load time (maps and programs, milliseconds). "
        "`refused by design` when `pykex check` states a kernel rule the program breaks "
        "(`[pykex] expected_check` in `case.toml`). Otherwise the first problem.",
        "- *lines*: lines of `prog.c` / `workaround.c` / `prog.py`, without blanks, "
        "comments and docstrings.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| " + " | ".join("---" for _ in HEADER) + " |",
    ]
    out += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
    out += ["", summary(results), "", line_totals(results), ""]
    problems = pykex_problems(results)
    if problems:
        out += ["## Where the pykex program does not (yet) load and behave", ""]
        out += [f"- {_markdown_cell(line)}" for line in problems]
        out.append("")
    out += ["## Workaround costs", ""]
    out += [f"- {r.case.name}: {r.case.workaround_cost}" for r in results
            if r.case.workaround_cost]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpftool", action="store_true",
                        help="also load every object with bpftool")
    parser.add_argument("--markdown", action="store_true",
                        help="print docs/gap.md (the table in Markdown, with date and kernel)")
    parser.add_argument("--case", action="append", default=[],
                        help="only cases whose directory starts with this (repeatable)")
    args = parser.parse_args(argv)
    cases = [c for c in load_cases()
             if not args.case or any(c.name.startswith(prefix) for prefix in args.case)]
    with tempfile.TemporaryDirectory(prefix="pykex-gap-") as out_dir:
        results = measure_all(cases, Path(out_dir), with_bpftool=args.bpftool)
    if args.markdown:
        print(format_markdown(results), end="")
    else:
        print(format_table(results))
        print(format_notes(results))
    return 0 if all(_as_recorded(r) for r in results) else 1


def _as_recorded(result: CaseResult) -> bool:
    """The C side is as recorded, bpftool agrees, and a pykex program that
    loads also behaves (one that does not compile is a listed gap of pykex;
    one that loads and misbehaves, or that the verifier rejects, is a bug)."""
    p = result.pykex
    pykex_ok = p is None or p.stage in ("check", "compile") or p.behaves
    return result.as_expected and not result.bpftool_disagrees and pykex_ok


if __name__ == "__main__":
    sys.exit(main())
