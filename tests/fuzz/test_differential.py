"""Generated extensions: accepted ⇒ loads, and the kernel agrees with host mode.

Each example is a random well-typed extension (:mod:`pykex.testing.progen`)
run on random packets in the kernel and in the IR interpreter, at O1 and O0;
verdicts, output packets, exceptions (kind, message, line chain) and map
contents must all agree. A failure prints the program: minimise it, fix the
backend, and keep it in ``regressions/``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from pykex.testing.progen import SMALL, Shape, differential, packet_lists, programs

pytestmark = pytest.mark.kernel

# Enough programs to cover the generator's forms in about a minute.
EXAMPLES = 150
TINY = Shape(functions=1, statements=3, depth=1, helper_calls=1)


def assert_agrees(source: str, packets: list[bytes]) -> None:
    outcome = differential(source, packets)
    assert outcome.accepted, f"the front end rejected a generated program:\n{source}\n" + (
        "\n".join(outcome.diagnostics)
    )
    assert outcome.loaded, "\n".join(outcome.problems) + f"\n{source}"
    assert not outcome.problems, "\n".join(outcome.problems) + f"\n{source}"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(source=programs(SMALL), packets=packet_lists())
def test_generated_programs_load_and_agree(source: str, packets: list[bytes]) -> None:
    assert_agrees(source, packets)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=programs(TINY), packets=packet_lists())
def test_tiny_generated_programs_load_and_agree(source: str, packets: list[bytes]) -> None:
    assert_agrees(source, packets)
