"""Tool modules: the front end compiles the kernel part and leaves the
user-space part (``main``, ``options`` and what only they use) to CPython."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from pykex.cli import main as cli
from pykex.lang import check, compile_to_ir
from pykex.lang.module import UserSpace

TOOLS = Path(__file__).resolve().parents[2] / "tools"

TOOL = """
\"\"\"A tool with options and a main.\"\"\"
import argparse
import time as clock
from collections import Counter

from pykex import RawTracepointContext, HashMap, raw_tracepoint, u32, u64

NAMES = {1: "one", 2: "two"}
LIMIT = 4
LABEL = "calls"
TITLE = LABEL.upper()

counts = HashMap[u32, u64](max_entries=LIMIT)
seen: u32 = 0


def bump(key: u32) -> None:
    counts[key] = u64(key) + 1


@raw_tracepoint("sys_enter")
def probe(ctx: RawTracepointContext) -> int:
    bump(u32(ctx.arg(1) & 3))
    return 0


def describe(value: int) -> str:
    return f"{NAMES.get(value, '?')} {TITLE}"


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=LIMIT)


def main(ext, args) -> None:
    started = clock.monotonic()
    print(describe(1), Counter(), started)


if __name__ == "__main__":
    main(None, None)
"""


def test_the_user_space_part_is_not_compiled() -> None:
    assert check(TOOL, "tool.py") == []
    module = compile_to_ir(TOOL, "tool.py")
    assert [p.name for p in module.programs] == ["probe"]
    assert {m.name for m in module.maps} >= {"counts", ".bss"}


def test_what_the_user_space_part_is() -> None:
    tree = ast.parse(TOOL)
    part = UserSpace.of(tree)
    assert part.functions == {"main", "options", "describe"}
    named = {getattr(node, "name", None) or ast.unparse(node).split("\n")[0]
             for node in part.statements}
    assert named == {"main", "options", "describe", "if __name__ == '__main__':",
                     "import argparse", "import time as clock",
                     "from collections import Counter", "NAMES = {1: 'one', 2: 'two'}",
                     "LABEL = 'calls'", "TITLE = LABEL.upper()"}


def test_a_function_a_program_uses_stays_kernel_code() -> None:
    source = TOOL.replace("    print(describe(1), Counter(), started)",
                          "    bump(1)\n    print(describe(1), Counter(), started)")
    assert UserSpace.of(ast.parse(source)).functions == {"main", "options", "describe"}
    assert check(source, "tool.py") == []


@pytest.mark.parametrize(("change", "where", "message"), [
    (("    bump(u32(ctx.arg(1) & 3))", "    bump(u32(clock.time()))"), ("clock.time", 13),
     "clock is imported from time for the user-space part; kernel code cannot use it"),
    (("    bump(u32(ctx.arg(1) & 3))", "    bump(u32(len(NAMES)))"), ("NAMES = {", 8),
     "not a constant expression"),
    (("    bump(u32(ctx.arg(1) & 3))", "    bump(u32(describe(2)))"), ("def describe", 20),
     "int has no fixed width"),
])
def test_kernel_code_cannot_use_the_user_space_part(change: tuple[str, str],
                                                    where: tuple[str, int], message: str
                                                    ) -> None:
    source = TOOL.replace(*change)
    assert source != TOOL
    line = next(n for n, text in enumerate(source.splitlines(), 1) if where[0] in text)
    headlines = [d.headline for d in check(source, "tool.py")]
    assert f"tool.py:{line}:{where[1]}: error: {message}" in headlines


def test_other_modules_need_a_user_space_part() -> None:
    source = textwrap.dedent("""
        import os
        from pykex import xdp, XdpContext

        @xdp()
        def prog(ctx: XdpContext) -> int:
            return 2
    """)
    (diagnostic,) = check(source, "ext.py")
    assert diagnostic.headline == ("ext.py:2:0: error: cannot import os: an extension may "
                                   "import only from pykex")
    assert "main() and options()" in (diagnostic.hint or "")


def test_pykex_check_accepts_every_tool(capsys: pytest.CaptureFixture[str]) -> None:
    paths = sorted(str(path) for path in TOOLS.glob("*.py"))
    assert len(paths) >= 8
    assert cli.main(["check", *paths]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == "".join(f"{path}: ok\n" for path in paths)


def test_pykex_build_compiles_a_tool(tmp_path: Path) -> None:
    output = tmp_path / "execsnoop.o"
    assert cli.main(["build", str(TOOLS / "execsnoop.py"), "-o", str(output)]) == 0
    assert output.read_bytes()[:4] == b"\x7fELF"
