"""Running the suite: every workload measured, then the BCC comparison, then the report.

``pykex bench`` calls :func:`run`; ``python -m bench.run`` from the
repository does the same with the same options.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from .bcc import probe_bcc
from .measure import Settings, measure_workload
from .report import (
    CHART_NEEDS,
    Report,
    describe_machine,
    format_report,
    now,
    write_chart,
    write_json,
)
from .workloads import NAMES, load_workloads

QUICK = Settings(repeat=1000, loads=2, compiles=1)

__all__ = [
    "CHART_NEEDS",
    "NAMES",
    "QUICK",
    "Report",
    "Settings",
    "format_report",
    "main",
    "run",
    "write_chart",
    "write_json",
]


def run(
    settings: Settings,
    names: Sequence[str] = (),
    progress: Callable[[str], None] = lambda _: None,
) -> Report:
    """Measure the workloads called ``names`` (all by default) and try BCC."""
    machine, date = describe_machine(), now()
    results = []
    for workload in load_workloads(names):
        progress(f"{workload.name}: compiling")
        results.append(measure_workload(workload, settings, progress))
    progress("BCC: compiling the empty program")
    return Report(settings, results, probe_bcc(), machine, date)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from pykex.cli import bench as command

    parser = argparse.ArgumentParser(prog="python -m bench.run", description=command.HELP)
    command.configure(parser)
    return command.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
