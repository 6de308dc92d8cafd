"""Exception reports on their own: formatting and conversion to Python exceptions."""

from __future__ import annotations

import pytest

from pykex.bpf.codegen import ERROR_RECORD, ExceptionSite
from pykex.ir.nodes import Loc
from pykex.lang.prelude import TerminationError
from pykex.runtime import ExceptionReport, ExtensionError, Frame, raise_for
from pykex.runtime.errors import ReportDecoder, SourceLines, format_message, report_for_site

SOURCE = "def f():\n    x = g()\n\ndef g():\n    return a[i]\n"
OUTER = Loc("m.py", 2, 4, "f")
INNER = Loc("m.py", 5, 11, "g", OUTER)


def site(kind: str = "IndexError", message: str = "index {} out of range ({})") -> ExceptionSite:
    return ExceptionSite(0, "prog", kind, message, tuple(INNER.chain()))


def test_report_reads_like_a_python_traceback() -> None:
    report = report_for_site(site(), (7, 4), SourceLines("m.py", SOURCE))
    assert str(report) == (
        "Traceback (most recent call last):\n"
        '  File "m.py", line 2, in f\n'
        "    x = g()\n"
        '  File "m.py", line 5, in g\n'
        "    return a[i]\n"
        "IndexError: index 7 out of range (4)"
    )
    assert report.frames == (Frame("m.py", 2, "f", "x = g()"), Frame("m.py", 5, "g", "return a[i]"))
    assert (report.program, report.site) == ("prog", 0)


def test_message_placeholders() -> None:
    assert format_message("{} + {} > {}", (1, 2, 3)) == "1 + 2 > 3"
    assert format_message("{} of {}", (1,)) == "1 of ?"
    assert format_message("no values", (5, 6)) == "no values"
    bare = ExceptionReport("AssertionError", "", "p", ())
    assert str(bare).splitlines()[-1] == "AssertionError"


def test_lines_of_other_files_come_from_disk(tmp_path) -> None:
    other = tmp_path / "helpers.py"
    other.write_text("# helpers\nvalue = table[key]\n")
    lines = SourceLines("m.py", SOURCE)
    assert lines.line(str(other), 2) == "value = table[key]"
    assert lines.line("m.py", 99) == "" and lines.line(str(tmp_path / "gone.py"), 1) == ""


def test_records_decode_against_the_site_table() -> None:
    class Compiled:
        file, source = "m.py", SOURCE
        sites = [site()]
        programs: list = []

    decoder = ReportDecoder(Compiled())  # type: ignore[arg-type]
    report = decoder.decode_bytes(ERROR_RECORD.pack(0, 0, 3, 2, 0, 0))
    assert report.headline == "IndexError: index 3 out of range (2)"
    unknown = decoder.decode_bytes(ERROR_RECORD.pack(5, 9, 0, 0, 0, 0))
    assert unknown.kind == "SystemError" and "site 5" in unknown.message
    assert unknown.program == "<program 9>"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("IndexError", IndexError),
        ("KeyError", KeyError),
        ("ZeroDivisionError", ZeroDivisionError),
        ("AssertionError", AssertionError),
        ("ValueError", ValueError),
        ("OverflowError", OverflowError),
        ("TerminationError", TerminationError),
        ("NoSuchError", ExtensionError),
        ("print", ExtensionError),  # a builtin, but not an exception class
    ],
)
def test_raise_for_picks_the_exception_class(kind: str, expected: type) -> None:
    report = report_for_site(site(kind, "boom {}"), (1,), SourceLines("m.py", SOURCE))
    with pytest.raises(expected) as caught:
        raise_for(report)
    assert type(caught.value) is expected
    assert caught.value.report is report
    assert caught.value.__notes__ == [str(report)]
    shown = "boom 1" if expected is not ExtensionError else f"{kind}: boom 1"
    assert caught.value.args == (shown,)
