"""Mistakes a newcomer makes, and the answer pykex gives: one clear message with a way out."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pykex.lang import check

PYKEX = [sys.executable, "-m", "pykex.cli.main"]

COUNTER = """
from pykex import xdp, XdpContext, XDP_PASS, HashMap, u32, u64

pings = HashMap[u32, u64](max_entries=16)

@xdp(on_error=XDP_PASS)
def prog(ctx: XdpContext) -> int:
    {body}
    return XDP_PASS
"""


def diagnose(body: str) -> tuple[str, str | None]:
    (first, *_) = check(COUNTER.format(body=body), "ext.py")
    return first.message, first.hint


@pytest.mark.parametrize(
    "body",
    [
        "count = pings.get(1)\n    pings[1] = count + 1",
        "count = pings.get(1)\n    if count > 3:\n        return 1",
    ],
)
def test_an_untested_optional_reference_says_how_to_test_it(body: str) -> None:
    message, hint = diagnose(body)
    assert "optional reference" in message
    assert hint is not None and "is not None" in hint and "setdefault" in hint


def test_get_with_a_default_points_to_setdefault() -> None:
    message, hint = diagnose("count = pings.get(1, 0)")
    assert (
        message == "pings.get(key) takes no default: it returns a reference to the value, or None"
    )
    assert hint is not None and "pings.setdefault(k, 0)" in hint


def test_a_type_used_without_import_says_what_to_import() -> None:
    (first,) = check(
        textwrap.dedent("""
        from pykex import xdp, XdpContext

        @xdp()
        def prog(ctx: XdpContext) -> int:
            x: u8 = 1
            return 2
    """),
        "ext.py",
    )
    assert first.message == "'u8' is not a type pykex knows"
    assert first.hint == "import it: from pykex import u8"


@pytest.mark.kernel
def test_running_a_module_without_programs_says_so(tmp_path: Path) -> None:
    path = tmp_path / "noprog.py"
    path.write_text("from pykex import u32\n\nLIMIT = 3\n")
    result = subprocess.run([*PYKEX, "run", str(path), "--duration", "5"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"pykex: error: {path} declares no program to run "
        "(a function decorated with @xdp, @tracepoint, ...)"
    ]


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    # `true` exits at once, long before pykex has started: its first write meets a
    # closed pipe, as `pykex features | head -1` does once head has its line.
    command = f"{sys.executable} -m pykex.cli.main features | true; echo ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.stderr == ""
    assert result.stdout.strip() == "141"
