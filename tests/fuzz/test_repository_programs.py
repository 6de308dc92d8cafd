"""Accepted ⇒ loads, over every extension in the repository.

Extensions are found as files (``examples/``, ``tools/``, ``gap/**/prog.py``,
``bench/**/prog.py``, ``tests/fuzz/regressions/``) and as source text
embedded in the test suites (string constants that import from pykex and
declare a program). A tool's file also holds its user-space side; the part
``pykex run`` compiles is checked. Each extension ``pykex.lang.check``
accepts must load into the kernel; the rejected ones are the front end's
own test cases (and are listed as skipped, with the first error).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pykex.compiler import Compilation
from pykex.kernel.errors import NotSupportedError
from pykex.lang import check, compile_to_ir
from pykex.runtime import load

ROOT = Path(__file__).resolve().parents[2]
FILE_PATTERNS = (
    "examples/**/*.py",
    "tools/**/*.py",
    "gap/**/prog.py",
    "bench/**/prog.py",
    "tests/fuzz/regressions/*.py",
)
PROGRAM = re.compile(
    r"^@(xdp|tc|tracepoint|raw_tracepoint|socket_filter|cgroup_skb|kprobe|perf_event)\b",
    re.MULTILINE,
)


def is_extension(text: str) -> bool:
    return "pykex" in text and PROGRAM.search(text) is not None


def extension_files() -> list[tuple[str, str]]:
    found = []
    for pattern in FILE_PATTERNS:
        for path in sorted(ROOT.glob(pattern)):
            text = path.read_text()  # tools too: the checker leaves their user-space part
            if is_extension(text):
                found.append((str(path.relative_to(ROOT)), text))
    return found


def embedded_extensions() -> list[tuple[str, str]]:
    """Extension sources written as string constants in the test suites."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        try:
            tree = ast.parse(path.read_text())
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if "import" in text and is_extension(text):
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", text))
    return found


EXTENSIONS = extension_files() + embedded_extensions()


def test_the_repository_has_extensions_to_check() -> None:
    assert len(EXTENSIONS) >= 5


@pytest.mark.kernel
@pytest.mark.parametrize(("name", "source"), EXTENSIONS, ids=[n for n, _ in EXTENSIONS])
def test_accepted_extensions_load(name: str, source: str) -> None:
    diagnostics = check(source, name)
    if diagnostics:
        pytest.skip(f"rejected by the front end: {diagnostics[0].headline}")
    compilation = Compilation.from_ir(compile_to_ir(source, name))
    try:
        extension = load(compilation)
    except NotSupportedError as error:
        pytest.skip(f"this kernel lacks what it needs: {error}")
    extension.close()
