"""The gap corpus holds on this kernel: every safe C program is rejected with
its recorded error, every workaround loads and behaves as its case says.

All cases are built and loaded once per module (two at a time: the rejected
ones spend seconds in the verifier) through pykex's loader. bpftool (libbpf)
loads them again as an independent check, except the C programs that exhaust
the verifier's one-million-instruction budget: each of those costs about
12 s per load, and ``python -m gap.report --bpftool`` covers them.
"""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gap.corpus import (
    CATEGORIES,
    Case,
    CaseError,
    build,
    c_lines,
    load,
    load_cases,
    read_case,
)
from gap.report import WORKERS, CaseResult, bpftool_disagreements, format_table, measure_all

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang"),
    pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool"),
]

CASES = load_cases()
REJECTED = [c for c in CASES if c.status == "rejected"]
CLOSED = [c for c in CASES if c.status == "loads"]
WITH_WORKAROUND = [c for c in CASES if c.workaround_c is not None]
INSTRUCTION_BUDGET = "BPF program is too large"


def _ids(cases: list[Case]) -> list[str]:
    return [c.name for c in cases]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CaseResult]]:
    out_dir = tmp_path_factory.mktemp("gap-objects")
    yield {r.case.name: r for r in measure_all(CASES, out_dir, with_pykex=False)}


@pytest.fixture(scope="module")
def bpftool_disagrees(results: dict[str, CaseResult]) -> dict[str, list[str]]:
    checks = [
        (name, obj, ours)
        for name, result in results.items()
        for obj, ours in result.objects()
        if ours.loaded or INSTRUCTION_BUDGET not in ours.error
    ]
    with ThreadPoolExecutor(WORKERS) as pool:
        found = pool.map(lambda item: bpftool_disagreements(item[1], item[2]), checks)
        disagrees: dict[str, list[str]] = {name: [] for name in results}
        for (name, _, _), messages in zip(checks, found, strict=True):
            disagrees[name] += messages
    return disagrees


def test_corpus_covers_every_category_with_24_rejections() -> None:
    assert len(REJECTED) >= 24
    assert {c.category for c in REJECTED} == set(CATEGORIES)
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", REJECTED, ids=_ids(REJECTED))
def test_safe_c_program_is_rejected(case: Case, results: dict[str, CaseResult]) -> None:
    outcome = results[case.name].c
    assert not outcome.loaded, f"{case.name}: prog.c now loads; record the closed gap"
    assert case.expected_error in outcome.error, outcome.log[-2000:]


@pytest.mark.parametrize("case", WITH_WORKAROUND, ids=_ids(WITH_WORKAROUND))
def test_workaround_loads_and_behaves(case: Case, results: dict[str, CaseResult]) -> None:
    outcome = results[case.name].workaround
    assert outcome is not None
    assert outcome.loaded, f"{case.name}: workaround rejected: {outcome.error}"
    assert case.checks, f"{case.name}: no packet checks"
    assert outcome.check_failures == []


@pytest.mark.parametrize("case", CLOSED, ids=_ids(CLOSED))
def test_closed_gap_loads_and_behaves(case: Case, results: dict[str, CaseResult]) -> None:
    outcome = results[case.name].c
    assert outcome.loaded, f"{case.name}: rejected again: {outcome.error}"
    assert case.notes, "a closed gap says when and why it closed"
    assert outcome.check_failures == []


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_bpftool_agrees(case: Case, bpftool_disagrees: dict[str, list[str]]) -> None:
    assert bpftool_disagrees[case.name] == []


def test_checks_catch_a_wrong_expectation(tmp_path: Path) -> None:
    """The packet checks can fail: a wrong verdict and a wrong map value are reported."""
    case = read_case(Path(__file__).parents[2] / "gap" / "cases" / "05_u32_pointer_offset")
    wrong = [
        dataclasses.replace(check, verdict="XDP_DROP",
                            expect={"last_port": {0: 54321}})
        for check in case.checks[:1]
    ]
    assert case.workaround_c is not None
    outcome = load(build(case.workaround_c, tmp_path), dataclasses.replace(case, checks=wrong))
    assert outcome.loaded
    assert len(outcome.check_failures) == 2
    assert "verdict 2, expected 1" in outcome.check_failures[0]
    assert "last_port[0]" in outcome.check_failures[1]


def test_table_lists_every_case(results: dict[str, CaseResult]) -> None:
    table = format_table(list(results.values()))
    for name in results:
        assert name in table
    assert "rejected: The sequence of 8193 jumps is too complex." in table


def test_c_lines_skips_comments_and_blanks(tmp_path: Path) -> None:
    source = tmp_path / "x.c"
    source.write_text(textwrap.dedent("""\
        // a comment
        /* a block
           comment */
        int x;

        /* one line */
        int y; // trailing comments count as code
    """))
    assert c_lines(source) == 2


def test_malformed_case_is_reported(tmp_path: Path) -> None:
    case_dir = tmp_path / "99_broken"
    case_dir.mkdir()
    (case_dir / "prog.c").write_text("int x;\n")
    (case_dir / "case.toml").write_text('id = "98"\n')
    with pytest.raises(CaseError, match="missing key"):
        read_case(case_dir)
    (case_dir / "case.toml").write_text(textwrap.dedent("""\
        id = "98"
        title = "t"
        category = 1
        status = "rejected"
        expected_error = "x"
        source = "constructed"
        entry = "f"
        behaviour = "b"
    """))
    with pytest.raises(CaseError, match="does not match the directory"):
        read_case(case_dir)
