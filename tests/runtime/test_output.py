"""Tool output: columns, JSON lines, colour rules, progress spinner, intervals."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import time

import pytest

from pykex.layout import make_struct, u16, u32
from pykex.runtime.output import (
    Column,
    JsonLines,
    Progress,
    Table,
    add_interval_arguments,
    add_json_argument,
    colorize,
    intervals,
    jsonable,
    use_color,
)

# How BCC's execsnoop prints its header and events.
EXECSNOOP_LINE = "%-16s %-7s %-7s %3s %s"

ANSI = re.compile(r"\033\[[0-9;]*[A-Za-z]")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _execsnoop(out: io.StringIO, **options: object) -> Table:
    return Table([Column("PCOMM", 16), Column("PID", 7), Column("PPID", 7),
                  Column("RET", 3, align=">"), Column("ARGS")], file=out, **options)


def test_columns_line_up_like_printf() -> None:
    out = io.StringIO()
    table = _execsnoop(out)
    table.header()
    table.row(b"bash\0\0\0junk", 4242, 1, 0, "/bin/ls -l")
    table.row("a-very-long-command-name", 7, 4242, -2, "x")
    header, first, second = out.getvalue().splitlines()
    assert header == EXECSNOOP_LINE % ("PCOMM", "PID", "PPID", "RET", "ARGS")
    assert first == EXECSNOOP_LINE % ("bash", 4242, 1, 0, "/bin/ls -l")
    assert second == EXECSNOOP_LINE % ("a-very-long-command-name", 7, 4242, -2, "x")


def test_column_shorthands_spec_and_truncation() -> None:
    table = Table([("TIME(s)", 9), "COMM"], file=io.StringIO())
    assert table.format_header() == "TIME(s)   COMM"
    spec = Table([Column("LAT(ms)", 8, align=">", spec=".2f"), Column("COMM", 4, truncate=True),
                  Column("END")], file=io.StringIO())
    assert spec.format_row(3.14159, "kworker", "!") == "    3.14 kwor !"
    with pytest.raises(ValueError, match=r"3 values \(LAT\(ms\), COMM, END\), got 2"):
        spec.format_row(1.0, "x")
    with pytest.raises(ValueError, match="align"):
        Column("X", 3, align="^")


def test_json_mode_emits_one_object_per_row() -> None:
    out = io.StringIO()
    table = _execsnoop(out, json=True)
    table.header()
    table.row(b"bash\0", 10, 1, 0, "ls", uid=0)
    table.row(b"sh", 11, 10, -2, "nope")
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert objects == [
        {"pcomm": "bash", "pid": 10, "ppid": 1, "ret": 0, "args": "ls", "uid": 0},
        {"pcomm": "sh", "pid": 11, "ppid": 10, "ret": -2, "args": "nope"},
    ]
    with pytest.raises(ValueError, match="got 1"):
        table.row("only")


def test_jsonable_values() -> None:
    Addr = make_struct("Addr", [("port", u16), ("ip", u32)])
    value = {"addr": Addr(80, 0x7F000001), "comm": b"cat\0xx", "cpus": [1, 2], "t": 1.5}
    assert jsonable(value) == {"addr": {"port": 80, "ip": 0x7F000001}, "comm": "cat",
                               "cpus": [1, 2], "t": 1.5}
    out = io.StringIO()
    JsonLines(out).emit({"interval": 1, "data": (b"x",)})
    assert json.loads(out.getvalue()) == {"interval": 1, "data": ["x"]}


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal, pipe = FakeTerminal(), io.StringIO()
    assert use_color(terminal) and not use_color(pipe)
    assert colorize("fail", "red", terminal) == "\033[31mfail\033[0m"
    assert colorize("fail", "red", pipe) == "fail"
    _execsnoop(terminal).row("x", 1, 1, -1, "", color="red")
    _execsnoop(pipe).row("x", 1, 1, -1, "", color="red")
    assert ANSI.search(terminal.getvalue()) and not ANSI.search(pipe.getvalue())

    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(terminal)
    assert colorize("fail", "red", terminal) == "fail"
    monkeypatch.setenv("NO_COLOR", "")  # set but empty does not count (no-color.org)
    assert use_color(terminal)
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        colorize("x", "pink", terminal)


def test_a_real_pseudo_terminal_counts_as_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as tty:
            assert use_color(tty)
    finally:
        os.close(leader)
        os.close(follower)


def test_progress_spins_on_a_terminal_and_clears_its_line() -> None:
    terminal = FakeTerminal()
    with Progress("compiling", file=terminal) as progress:
        time.sleep(Progress.PERIOD * 2.5)
        progress.update("loading")
        time.sleep(Progress.PERIOD * 1.5)
    text = terminal.getvalue()
    frames = re.findall(r"\r([|/\\-]) (\w+)\033\[K", text)
    assert len(frames) >= 3
    assert {message for _, message in frames} == {"compiling", "loading"}
    assert [f for f, _ in frames[:4]] == list(Progress.FRAMES[: len(frames[:4])])
    assert text.endswith("\r\033[K")


def test_progress_is_silent_off_a_terminal() -> None:
    pipe = io.StringIO()
    with Progress("compiling", file=pipe):
        time.sleep(Progress.PERIOD * 1.5)
    assert pipe.getvalue() == ""


class FakeClock:
    """A monotonic clock that ``sleep`` advances; each tick's work costs ``work``."""

    def __init__(self, work: float = 0.0, interrupt_on: int | None = None) -> None:
        self.now = 100.0
        self.work = work
        self.sleeps: list[float] = []
        self.interrupt_on = interrupt_on

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.interrupt_on == len(self.sleeps):
            self.now += seconds / 2
            raise KeyboardInterrupt
        self.now += seconds


def test_intervals_keep_their_period_and_count() -> None:
    fake = FakeClock()
    ticks = []
    for tick in intervals(2.0, 3, sleep=fake.sleep, clock=fake.clock, wall=lambda: 0.0):
        ticks.append(tick)
        fake.now += 0.3  # printing takes time; the next wait is shorter
    assert [t.number for t in ticks] == [1, 2, 3]
    assert [t.last for t in ticks] == [False, False, True]
    assert [t.elapsed for t in ticks] == [2.0, 4.0, 6.0]
    assert fake.sleeps == pytest.approx([2.0, 1.7, 1.7])
    assert not any(t.interrupted for t in ticks)


def test_ctrl_c_ends_with_a_final_tick() -> None:
    fake = FakeClock(interrupt_on=2)
    ticks = list(intervals(1.0, None, sleep=fake.sleep, clock=fake.clock))
    assert [(t.number, t.last, t.interrupted) for t in ticks] == [(1, False, False),
                                                                 (2, True, True)]
    until_ctrl_c = FakeClock(interrupt_on=3)
    ticks = list(intervals(None, sleep=until_ctrl_c.sleep, clock=until_ctrl_c.clock))
    assert len(ticks) == 1 and ticks[0].interrupted


def test_intervals_in_real_time() -> None:
    start = time.monotonic()
    ticks = list(intervals(0.05, 3))
    took = time.monotonic() - start
    assert len(ticks) == 3 and ticks[-1].last
    assert 0.15 <= took < 1.0
    assert re.fullmatch(r"\d\d:\d\d:\d\d", ticks[0].stamp())
    assert ticks[0].stamp("%Y") == time.strftime("%Y", time.localtime(ticks[0].time))


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        next(intervals(0))
    with pytest.raises(ValueError, match="at least 1"):
        next(intervals(1, 0))


def test_bcc_style_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="runqlat")
    add_interval_arguments(parser)
    add_json_argument(parser)
    args = parser.parse_args(["-T", "1", "5", "--json"])
    assert (args.interval, args.count, args.timestamp, args.json) == (1.0, 5, True, True)
    args = parser.parse_args([])
    assert (args.interval, args.count, args.timestamp, args.json) == (None, None, False, False)
    with pytest.raises(SystemExit):
        parser.parse_args(["0"])
    assert "must be positive" in capsys.readouterr().err
