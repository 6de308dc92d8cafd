"""Running a tool of tools/ in-process, with a workload started once it is attached."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pykex.runtime.runner import Runner, Tool, parse_tool_args

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@dataclass
class ToolRun:
    status: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


def run_tool(name: str, *argv: str, workload: Callable[[], object] | None = None) -> ToolRun:
    """Run ``tools/<name>.py`` with ``argv`` (give it ``--duration``); ``workload``
    runs in a thread once every program is attached."""
    tool = Tool.read(TOOLS / f"{name}.py")
    args = parse_tool_args(tool, argv)
    out, err = io.StringIO(), io.StringIO()
    threads = []

    def start(_: Runner) -> None:
        if workload is not None:
            thread = threading.Thread(target=workload, daemon=True)
            thread.start()
            threads.append(thread)

    status = Runner(tool, args, out=out, err=err).run(on_attached=start)
    for thread in threads:
        thread.join(timeout=30)
    return ToolRun(status, out.getvalue(), err.getvalue())


@pytest.fixture
def tools_dir() -> Path:
    return TOOLS
