"""Suite-wide fixtures and checks.

Kernel tests need root; everything else runs anywhere. Every run ends with the
leak check of :mod:`tests.leakcheck`: a network namespace, veth, bpffs pin or
BPF link left behind by the tests, or any XDP program on eth0, fails the run.
"""

from __future__ import annotations

import os

import pytest

from tests import leakcheck

_SNAPSHOT = pytest.StashKey[leakcheck.Snapshot]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root to load BPF programs")
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(skip)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_SNAPSHOT] = leakcheck.take_snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_SNAPSHOT, None)
    if before is None:
        return
    leaks = leakcheck.find_leaks(before)
    if not leaks:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["LEAK CHECK FAILED: the tests left these behind:", *(f"  {x}" for x in leaks)]
    if reporter is not None:
        reporter.ensure_newline()
        for line in lines:
            reporter.write_line(line, red=True, bold=True)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
