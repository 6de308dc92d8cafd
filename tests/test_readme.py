"""The README's first extension is real: it passes `pykex check` and matches the example file."""

from __future__ import annotations

import re
from pathlib import Path

from pykex.lang import check

ROOT = Path(__file__).resolve().parents[1]


def _first_extension() -> str:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)[0]


def test_readme_extension_checks() -> None:
    assert check(_first_extension(), "README.md") == []


def test_readme_extension_is_the_example_the_demo_runs() -> None:
    def code(source: str) -> list[str]:
        lines = [line.split("#")[0].rstrip() for line in source.splitlines()]
        return [line for line in lines if line and not line.lstrip().startswith('"""')]

    example = (ROOT / "examples" / "firewall.py").read_text()
    body = example[example.index("from pykex import"):]
    assert code(_first_extension()) == [
        line for line in code(body) if not line.startswith(("IPv4 source", "Indexed by"))
    ]
