"""The pykex half of the gap corpus: every case's ``prog.py`` passes
``pykex check``, loads, and passes the case's packet checks in the kernel
(``BPF_PROG_TEST_RUN``) and in host mode (``pykex.load_host``).

Each program is measured once per module and mode (milliseconds each). A
case whose natural program meets a limitation of pykex is listed in
``KNOWN_PROBLEMS`` and its tests are strict xfails: they fail loudly once
the limitation is gone, so the entry must go with it. A case whose program
breaks a kernel rule that pykex states as a language rule records the
diagnostic in ``case.toml`` (``[pykex] expected_check``); that diagnostic is
its outcome.
"""

from __future__ import annotations

import dataclasses
import datetime
import shutil
import textwrap
from pathlib import Path

import pytest
from gap.corpus import (
    Case,
    LoadOutcome,
    PykexOutcome,
    load_cases,
    measure_pykex,
    python_lines,
    read_case,
)
from gap.report import CaseResult, expected_check, format_markdown, format_table

CASES = load_cases()
WITH_PYKEX = [c for c in CASES if c.prog_py is not None]
CASES_DIR = Path(__file__).parents[2] / "gap" / "cases"

KNOWN_PROBLEMS: dict[str, str] = {}
# Cases whose program breaks a kernel rule pykex states as a language rule: the
# outcome is `pykex check`'s diagnostic (`[pykex] expected_check` in case.toml).
BY_DESIGN = {c.name: message for c in WITH_PYKEX if (message := expected_check(c)) is not None}
# Far below the verifier's 1,000,000: the loops of category 1 are verified
# once, whatever the payload's length, instead of walked byte by byte.
LOOP_INSTRUCTION_CEILING = 10_000


def _params(cases: list[Case], *, kernel: bool) -> list[object]:
    params = []
    for case in cases:
        if case.name in BY_DESIGN:
            continue
        marks = [pytest.mark.kernel] if kernel else []
        if case.name in KNOWN_PROBLEMS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_PROBLEMS[case.name]))
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.fixture(scope="module")
def kernel_outcomes() -> dict[str, PykexOutcome]:
    return {case.name: measure_pykex(case) for case in WITH_PYKEX}


@pytest.fixture(scope="module")
def host_outcomes() -> dict[str, PykexOutcome]:
    return {case.name: measure_pykex(case, kernel=False) for case in WITH_PYKEX}


def _loaded(outcome: PykexOutcome) -> None:
    assert outcome.stage == "done", f"stops at {outcome.stage}: {outcome.error}"


def test_every_case_has_a_pykex_program() -> None:
    assert [c.name for c in CASES if c.prog_py is None] == []
    assert set(KNOWN_PROBLEMS) <= {c.name for c in CASES}
    assert not set(KNOWN_PROBLEMS) & set(BY_DESIGN)


@pytest.mark.parametrize("case", [c for c in WITH_PYKEX if c.name in BY_DESIGN],
                         ids=[name for name in BY_DESIGN])
def test_a_kernel_rule_is_stated_at_compile_time(case: Case) -> None:
    """The program is refused by `pykex check` with the recorded diagnostic: the
    verifier never sees it."""
    outcome = measure_pykex(case, kernel=False)
    assert outcome.stage == "check"
    assert outcome.error.split(": ", 1)[1] == BY_DESIGN[case.name]


def test_by_design_cases_read_as_such_in_the_report() -> None:
    message = BY_DESIGN["10_lock_and_helper"]
    result = _result("10_lock_and_helper",
                     pykex=PykexOutcome("check", f"line 24: {message}"))
    text = format_markdown([result], when=datetime.date(2025, 1, 2))
    assert f"refused by design (the kernel's rule, stated at compile time): line 24: {message}" \
        in text
    assert "pykex stops at" not in text
    assert "1 refused at compile time by design (10_lock_and_helper)" in text


@pytest.mark.parametrize("case", _params(WITH_PYKEX, kernel=True))
def test_checks_and_loads(case: Case, kernel_outcomes: dict[str, PykexOutcome]) -> None:
    outcome = kernel_outcomes[case.name]
    _loaded(outcome)
    assert outcome.processed.keys() >= {case.entry}
    assert all(insns > 0 for insns in outcome.processed.values())
    assert outcome.load_ms > 0


@pytest.mark.parametrize("case", _params(WITH_PYKEX, kernel=True))
def test_behaves_in_the_kernel(case: Case, kernel_outcomes: dict[str, PykexOutcome]) -> None:
    outcome = kernel_outcomes[case.name]
    _loaded(outcome)
    assert case.checks, "no packet checks"
    assert outcome.kernel_failures == []


@pytest.mark.parametrize("case", _params(WITH_PYKEX, kernel=False))
def test_behaves_in_host_mode(case: Case, host_outcomes: dict[str, PykexOutcome]) -> None:
    outcome = host_outcomes[case.name]
    _loaded(outcome)
    assert outcome.host_failures == []


PAYLOAD_LOOPS = [c for c in WITH_PYKEX if c.category == 1 and c.name not in KNOWN_PROBLEMS]


@pytest.mark.kernel
@pytest.mark.parametrize("case", PAYLOAD_LOOPS, ids=[c.name for c in PAYLOAD_LOOPS])
def test_payload_loops_stay_far_below_the_instruction_limit(
    case: Case, kernel_outcomes: dict[str, PykexOutcome]
) -> None:
    """The C programs of category 1 exhaust the verifier; the plain pykex loops do not."""
    outcome = kernel_outcomes[case.name]
    _loaded(outcome)
    assert sum(outcome.processed.values()) < LOOP_INSTRUCTION_CEILING


# -- the harness itself -------------------------------------------------------------------

CASE_05 = CASES_DIR / "05_u32_pointer_offset"


def _copy_case(source: Path, tmp_path: Path, program: str | None = None) -> Path:
    target = tmp_path / source.name
    target.mkdir()
    for name in ("case.toml", "prog.c"):
        shutil.copy(source / name, target / name)
    (target / "prog.py").write_text(program or (source / "prog.py").read_text())
    return target


@pytest.mark.parametrize("mode", [pytest.param("kernel", marks=pytest.mark.kernel), "host"])
def test_checks_catch_a_wrong_expectation(mode: str, tmp_path: Path) -> None:
    """A wrong verdict and a wrong map value are reported, in both modes."""
    case = read_case(_copy_case(CASE_05, tmp_path))
    wrong = [dataclasses.replace(check, verdict="XDP_DROP", expect={"last_port": {0: 54321}})
             for check in case.checks[:1]]
    outcome = measure_pykex(dataclasses.replace(case, checks=wrong), kernel=mode == "kernel")
    failures = outcome.kernel_failures if mode == "kernel" else outcome.host_failures
    assert len(failures) == 2
    assert "verdict 2, expected 1" in failures[0]
    assert "last_port[0] is 53, not 54321" in failures[1]


def test_an_exception_fails_a_check_even_with_the_right_verdict(tmp_path: Path) -> None:
    """on_error=XDP_PASS gives the expected verdict, but the run raised: a failure."""
    reads_too_far = textwrap.dedent("""\
        from pykex import XDP_PASS, ArrayMap, XdpContext, u32, xdp

        last_port = ArrayMap[u32](max_entries=1)


        @xdp(on_error=XDP_PASS)
        def dest_port(ctx: XdpContext) -> int:
            last_port[0] = u32(ctx.packet[len(ctx.packet)])
            return XDP_PASS
    """)
    case = read_case(_copy_case(CASE_05, tmp_path, reads_too_far))
    outcome = measure_pykex(case, kernel=False)
    assert outcome.host_failures
    assert all("raised IndexError" in f or "last_port[0]" in f for f in outcome.host_failures)


def test_a_program_pykex_check_refuses_stops_at_check(tmp_path: Path) -> None:
    invalid = "from pykex import xdp\n\nx = y\n"
    outcome = measure_pykex(read_case(_copy_case(CASE_05, tmp_path, invalid)), kernel=False)
    assert (outcome.stage, outcome.loaded, outcome.behaves) == ("check", False, False)
    assert outcome.error.startswith("line 3: ")


def test_python_lines_skip_docstrings_comments_and_blanks(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(textwrap.dedent('''\
        """A module docstring
        over two lines."""

        # a comment
        X = 1  # trailing comments count as code


        def f() -> int:
            """A function docstring."""
            return (X +
                    1)
    '''))
    assert python_lines(source) == 4


def _result(name: str, *, pykex: PykexOutcome | None, c_error: str = "R1 bad") -> CaseResult:
    case = dataclasses.replace(read_case(CASE_05), directory=CASES_DIR / name)
    return CaseResult(case, LoadOutcome(False, c_error), 30, Path("x.o"), pykex=pykex,
                      python_lines=12)


def test_markdown_has_a_row_per_case_with_date_kernel_and_problems() -> None:
    results = [
        _result("05_u32_pointer_offset",
                pykex=PykexOutcome("done", processed={"dest_port": 113}, load_ms=1.5)),
        _result("05_other", c_error="a | b",
                pykex=PykexOutcome("check", "line 3: not a constant expression")),
    ]
    text = format_markdown(results, when=datetime.date(2025, 1, 2))
    assert "2025-01-02" in text and "Linux " in text
    rows = [line for line in text.splitlines() if line.startswith("| 05_")]
    assert len(rows) == 2
    assert "behaves (1 prog, 113 insns, 1.5 ms)" in rows[0]
    assert "rejected: a \\| b" in rows[1]  # a | in a cell would split it
    assert "- 05_other: pykex stops at check: line 3: not a constant expression" in text
    assert "pykex: 1 of 2 programs load and behave" in text
    assert "Over the 1 case whose pykex program behaves: 30 lines of C in the programs" in text
    assert "0 in 0 workarounds, 12 of Python." in text
    plain = format_table(results)
    assert "30/-/12" in plain and "pykex check: line 3" in plain
