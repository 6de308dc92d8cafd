"""docs/errors.md is the catalogue of every error the front end can give; this keeps it true.

Two directions:

* every entry's example is checked with :func:`pykex.lang.check` and must give
  exactly the documented first line (``ext.py:LINE:COL: error: message``), and
  that message must be an instance of the entry's template (its heading);
* every diagnostic template found in ``src/pykex/lang/`` must be the heading of
  an entry.

A *template* is a message with each computed part replaced by ``{}``:
``f"cannot {verb} {a} and {b}"`` is ``cannot {} {} and {}``. A ``!r``
conversion shows its quotes, as the user sees them: ``f"no field {name!r}"``
is ``no field '{}'``. Headings name their parts for the reader
(``cannot {operation} {type} and {type}``); the names are dropped before the
headings are compared with the templates of the source.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from pykex.lang import check

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "errors.md"
FRONT_END = ROOT / "src" / "pykex" / "lang"
FILENAME = "ext.py"

# Where the source states a message, by the callable that receives it and the
# position of the message among its arguments: ``SourceError(node, message)``,
# ``reporter.error(node, message)``, ``reporter.at(line, col, message)``, and the
# errors whose text the checker passes on with ``str(failure)``.
MESSAGE_ARGUMENT = {
    "SourceError": 1,
    "error": 1,
    "at": 2,
    "ContextLayoutError": 0,
    "KernelTypeError": 0,
}
# Functions that return a message, and module-level tables of
# ``node type -> (message, hint)``, whose strings are messages too.
MESSAGE_FUNCTIONS = {"_not_storable", "unsupported_tracepoint_field"}
MESSAGE_TABLES = {"_UNSUPPORTED_STMT", "_UNSUPPORTED_EXPR"}
# Messages the checker passes on rather than states; each comes from one of the
# sources above (``message`` from a table, ``why`` from a message function,
# ``str(failure)`` from a message-carrying error, ``error.message`` from a
# SourceError raised elsewhere) or from pykex.layout (``str(failure)`` of a Struct
# layout or initial value), whose catalogue entries are kept true by their examples.
PASSED_ON = {"message", "why", "str(failure)", "error.message"}


def _template(node: ast.expr) -> str:
    """The fixed text of a message expression, with ``{}`` for each computed part."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_template(part) for part in node.values)
    if isinstance(node, ast.FormattedValue):
        return "'{}'" if node.conversion == ord("r") else "{}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template(node.left) + _template(node.right)
    return "{}"


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr | ast.BinOp) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str))


def _receiver_is_reporter(call: ast.Call) -> bool:
    func = call.func
    return isinstance(func, ast.Attribute) and ast.unparse(func.value).endswith("reporter")


@dataclass(frozen=True)
class Site:
    where: str
    template: str


def _sites(path: Path) -> tuple[list[Site], list[Site]]:
    """The message templates of one module, and the messages it passes on."""
    tree = ast.parse(path.read_text())
    stated: list[Site] = []
    passed_on: list[Site] = []

    def add(node: ast.expr) -> None:
        site = f"{path.name}:{node.lineno}"
        if _is_text(node):
            stated.append(Site(site, _template(node)))
        else:
            passed_on.append(Site(site, ast.unparse(node)))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in ("error", "at") and not _receiver_is_reporter(node):
                continue
            position = MESSAGE_ARGUMENT.get(name or "")
            if position is not None and len(node.args) > position:
                add(node.args[position])
            # table.get(type(node), (fallback message, hint))
            if (name == "get" and isinstance(func, ast.Attribute)
                    and ast.unparse(func.value) in MESSAGE_TABLES and len(node.args) == 2
                    and isinstance(node.args[1], ast.Tuple)):
                add(node.args[1].elts[0])
        elif isinstance(node, ast.FunctionDef) and node.name in MESSAGE_FUNCTIONS:
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None and _is_text(
                        inner.value):
                    add(inner.value)
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
              and any(ast.unparse(t) in MESSAGE_TABLES for t in node.targets)):
            for value in node.value.values:
                assert isinstance(value, ast.Tuple)
                add(value.elts[0])
    return stated, passed_on


def source_templates() -> dict[str, list[str]]:
    """Every message template of the front end -> where it is stated."""
    found: dict[str, list[str]] = {}
    for path in sorted(FRONT_END.glob("*.py")):
        stated, passed_on = _sites(path)
        for site in stated:
            found.setdefault(site.template, []).append(site.where)
        unknown = [s for s in passed_on if s.template not in PASSED_ON
                   and s.template.split("(")[0] not in MESSAGE_FUNCTIONS]
        assert not unknown, (
            f"messages whose text this test cannot see: {unknown}; state them as literals "
            "or teach MESSAGE_ARGUMENT / MESSAGE_FUNCTIONS / MESSAGE_TABLES their source")
    return found


# -- the catalogue ------------------------------------------------------------------------------

# A heading is the template in a code span: `template`, or `` template `` when the
# template itself holds backticks.
HEADING = re.compile(r"^### (?P<ticks>`+) ?(?P<template>.+?) ?(?P=ticks)$", re.MULTILINE)
BLOCK = re.compile(r"^```(?P<lang>python|text)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
NO_EXAMPLE = "*No example:*"
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class Entry:
    template: str  # as the heading writes it, parts named
    example: str | None
    output: str | None
    says_why_no_example: bool

    @property
    def bare_template(self) -> str:
        return PLACEHOLDER.sub("{}", self.template)

    def matches(self, message: str) -> bool:
        pieces = PLACEHOLDER.split(self.template)
        return re.fullmatch(".*".join(map(re.escape, pieces)), message) is not None


def catalogue() -> list[Entry]:
    text = CATALOGUE.read_text()
    headings = list(HEADING.finditer(text))
    entries = []
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        section = text[heading.end():end]
        blocks = {b["lang"]: b["body"] for b in reversed(list(BLOCK.finditer(section)))}
        entries.append(Entry(heading["template"], blocks.get("python"), blocks.get("text"),
                             NO_EXAMPLE in section))
    return entries


ENTRIES = catalogue()
EXAMPLES = [e for e in ENTRIES if e.example is not None]


def test_catalogue_has_one_entry_per_template() -> None:
    templates = [e.bare_template for e in ENTRIES]
    assert len(templates) == len(set(templates)), "a template has two entries"


def test_every_entry_has_an_example_or_says_why_not() -> None:
    for entry in ENTRIES:
        if entry.example is None:
            assert entry.says_why_no_example, f"{entry.template}: no example and no reason"
        else:
            assert entry.output is not None, f"{entry.template}: example without output"


@pytest.mark.parametrize("entry", EXAMPLES, ids=[e.template for e in EXAMPLES])
def test_example_gives_the_documented_error(entry: Entry) -> None:
    assert entry.example is not None and entry.output is not None
    if "@tracepoint" in entry.example and os.geteuid() != 0:
        pytest.skip("tracepoint formats are read from tracefs, which needs root")
    diagnostics = check(entry.example, FILENAME)
    assert diagnostics, "the example was accepted"
    documented = entry.output.splitlines()[0]
    assert diagnostics[0].headline == documented
    assert entry.matches(diagnostics[0].message), (
        f"{diagnostics[0].message!r} is not an instance of the heading {entry.template!r}")


def test_every_template_of_the_front_end_has_an_entry() -> None:
    documented = {e.bare_template for e in ENTRIES}
    missing = {t: where for t, where in source_templates().items() if t not in documented}
    assert not missing, "templates without an entry in docs/errors.md:\n" + "\n".join(
        f"  {t!r} ({', '.join(where)})" for t, where in sorted(missing.items()))
