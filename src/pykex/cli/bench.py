"""``pykex bench``: each workload as idiomatic pykex and idiomatic C, timed side by side.

The suite lives in the repository's ``bench/`` folder (workloads, harness);
this command finds it, runs it and prints the table, optionally writing the
JSON report and a PNG chart. ``docs/BENCHMARKS.md`` explains the method.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HELP = "time each benchmark workload as pykex and as C (clang) with BPF_PROG_TEST_RUN"

_SUITE_PACKAGE = "bench"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "workloads", nargs="*", metavar="WORKLOAD", help="workloads to run (default: all)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1,000 runs per test run, 2 loads, 1 compilation",
    )
    parser.add_argument("--repeat", type=_positive, help="runs per test run (default 1,000,000)")
    parser.add_argument("--loads", type=_positive, help="fresh loads per version (default 20)")
    parser.add_argument(
        "--compiles", type=_positive, help="compilations timed per version (default 3)"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    parser.add_argument("--chart", type=Path, metavar="FILE", help="draw the ratios as a PNG")
    parser.add_argument(
        "--suite",
        type=Path,
        metavar="DIR",
        help="the benchmark suite (default: bench/ here or in the pykex checkout)",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def find_suite(explicit: Path | None) -> Path:
    """The suite's folder: ``explicit``, else ``./bench``, else the checkout's ``bench/``."""
    checkout = Path(__file__).resolve().parents[3] / _SUITE_PACKAGE
    candidates = [explicit] if explicit else [Path.cwd() / _SUITE_PACKAGE, checkout]
    for candidate in candidates:
        if candidate is not None and (candidate / "run.py").is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        "cannot find the benchmark suite (a folder with run.py): run pykex bench from the "
        "pykex repository or pass --suite DIR"
    )


def import_suite(folder: Path) -> ModuleType:
    """The suite's ``run`` module, importing the folder as the package ``bench``."""
    loaded = sys.modules.get(_SUITE_PACKAGE)
    if loaded is None or Path(next(iter(getattr(loaded, "__path__", [""])))).resolve() != folder:
        spec = importlib.util.spec_from_file_location(
            _SUITE_PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import the benchmark suite in {folder}")
        package = importlib.util.module_from_spec(spec)
        sys.modules[_SUITE_PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{_SUITE_PACKAGE}.run")


def run(args: argparse.Namespace) -> int:
    suite = import_suite(find_suite(args.suite))
    unknown = [name for name in args.workloads if name not in suite.NAMES]
    if unknown:
        print(
            f"pykex bench: unknown workload {', '.join(unknown)} "
            f"(known: {', '.join(suite.NAMES)})",
            file=sys.stderr,
        )
        return 2
    from_mode = suite.QUICK if args.quick else suite.Settings()
    settings = suite.Settings(
        repeat=args.repeat or from_mode.repeat,
        loads=args.loads or from_mode.loads,
        compiles=args.compiles or from_mode.compiles,
    )
    report = suite.run(settings, args.workloads, progress=_progress)
    _progress("")
    print(suite.format_report(report))
    if args.json:
        suite.write_json(report, args.json)
    if args.chart:
        try:
            suite.write_chart(report, args.chart)
        except RuntimeError as error:
            print(f"pykex bench: no chart: {error}", file=sys.stderr)
            return 1
    return 0 if report.all_checks_passed else 1


def _progress(message: str) -> None:
    """One status line on a terminal, rewritten in place; nothing when redirected."""
    if sys.stderr.isatty():
        print(f"\r\033[K{message}", end="", file=sys.stderr, flush=True)
