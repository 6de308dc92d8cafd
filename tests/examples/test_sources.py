"""Every example is a documented extension that ``pykex check`` accepts."""

from __future__ import annotations

import ast

import pytest

from pykex.cli import main as cli

from .conftest import EXAMPLES, example_path

NAMES = ["firewall", "openat_count", "packet_parser", "payload_scan"]


def test_every_example_is_listed() -> None:
    assert set(NAMES) == {path.stem for path in EXAMPLES.glob("*.py")}


@pytest.mark.parametrize("name", NAMES)
def test_header_says_what_it_does_and_how_to_run_it(name: str) -> None:
    docstring = ast.get_docstring(ast.parse(example_path(name).read_text()))
    assert docstring is not None
    assert "What it does" in docstring
    assert "How to run it" in docstring
    assert f"pykex check examples/{name}.py" in docstring


@pytest.mark.parametrize("name", NAMES)
def test_pykex_check_accepts_it(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(example_path(name))
    assert cli.main(["check", path]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == f"{path}: ok\n"
