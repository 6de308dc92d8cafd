"""``pykex bench --quick`` end to end: every workload loads, passes its check, is timed.

These tests check that the benchmarks run and compute the right things; they
do not judge the timings.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from bench.measure import Settings, measure_workload
from bench.workloads import NAMES, load_workloads

from pykex.cli.main import main

pytestmark = pytest.mark.kernel

SUITE = Path(__file__).resolve().parents[2] / "bench"
TINY = Settings(repeat=100, loads=1, compiles=1)


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if shutil.which("clang") is None:
        pytest.skip("the C baselines need clang")
    path = tmp_path_factory.mktemp("bench") / "report.json"
    status = main(["bench", "--quick", "--suite", str(SUITE), "--json", str(path)])
    document = json.loads(path.read_text())
    assert status == 0, [w for w in document["workloads"] if w["c"]["status"] != "ok"]
    return document


def test_report_has_every_workload_in_order(quick_report: dict) -> None:
    assert [w["name"] for w in quick_report["workloads"]] == list(NAMES)
    assert quick_report["settings"] == {"repeat": 1000, "loads": 2, "compiles": 1}
    assert quick_report["machine"]["kernel"]


def test_every_c_baseline_passes_its_check_and_is_timed(quick_report: dict) -> None:
    for workload in quick_report["workloads"]:
        c = workload["c"]
        assert (c["status"], c["check"]) == ("ok", "passed"), workload["name"]
        assert len(c["ns_per_run_each_load"]) == 2
        assert c["ns_per_run"] > 0
        assert c["xlated_insns"] > 0 and c["verified_insns"] > 0 and c["jited_bytes"] > 0
        assert c["load_ms"] > 0 and c["source_to_loaded_ms"] > c["load_ms"]


def test_pykex_column_is_measured_or_pending(quick_report: dict) -> None:
    for workload in quick_report["workloads"]:
        py = workload["pykex"]
        written = (SUITE / "workloads" / workload["name"] / "prog.py").exists()
        if written:
            assert (py["status"], py["check"]) == ("ok", "passed"), (workload["name"], py)
            assert workload["ratio"] > 0
        else:
            assert py["status"] == "not yet written"
            assert workload["ratio"] is None


def test_floor_is_the_empty_program(quick_report: dict) -> None:
    empty = quick_report["workloads"][0]
    assert quick_report["floor_ns"] == empty["c"]["ns_per_run"]


def test_bcc_is_measured_or_its_failure_is_reported(quick_report: dict) -> None:
    bcc = quick_report["bcc"]
    if bcc["status"] == "ok":
        assert bcc["source_to_loaded_ms"] > 0
    else:
        assert bcc["status"] in ("not installed", "does not start")
        assert bcc["error"]


def _variant(name: str, directory: Path, find: str, put: str):
    """Workload ``name`` with its C program edited: ``find`` replaced by ``put``."""
    (workload,) = load_workloads([name])
    source = workload.c_source.read_text()
    assert find in source
    (directory / "prog.c").write_text(source.replace(find, put))
    return replace(workload, directory=directory)


def test_a_program_with_the_wrong_verdict_fails(tmp_path: Path) -> None:
    lazy = _variant("parse_blocklist", tmp_path, "return XDP_DROP;", "return XDP_PASS;")
    result = measure_workload(lazy, TINY)
    assert result.c.status == "failed"
    assert result.c.check == "the verdict is 2, expected 1"
    assert result.c.ns_per_run == []


def test_a_program_that_updates_maps_wrongly_fails(tmp_path: Path) -> None:
    sloppy = _variant("spin_lock", tmp_path, "g->value += 1;", "g->value += 2;")
    result = measure_workload(sloppy, TINY)
    assert result.c.status == "failed"
    assert result.c.check == "the value updated under the lock is 6, expected 3"


def test_a_program_that_does_not_compile_is_reported(tmp_path: Path) -> None:
    broken = _variant("empty", tmp_path, "return XDP_PASS;", "return XDP_PASS")
    result = measure_workload(broken, TINY)
    assert result.c.status == "failed"
    assert result.c.error.startswith("compile: clang failed")
