"""``pykex fuzz``: a short soak run prints its counts and passes."""

from __future__ import annotations

import pytest

from pykex.cli.main import main

pytestmark = pytest.mark.kernel


def test_a_short_soak_run_reports_its_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--seed", "7", "--count", "3"]) == 0
    out = capsys.readouterr().out
    assert "generated 3, accepted 3, loaded 3, mismatched 0, failed 0" in out


def test_replay_shows_the_program(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--seed", "7", "--count", "1", "--show", "--host-only"]) == 0
    out = capsys.readouterr().out
    assert "# seed 7" in out and "def prog(ctx: XdpContext) -> int:" in out
    assert "loaded 0" in out  # host mode only: nothing went into the kernel
