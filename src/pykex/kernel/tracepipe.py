"""Reading ``bpf_trace_printk`` output from tracefs ``trace_pipe``.

``bpf_trace_printk`` writes into the kernel's global trace buffer, which
everything on the machine shares: other programs, other tracers, other tests.
Reading ``trace_pipe`` *consumes* what it returns, for every reader at once.
So a reader should look only for its own lines (a unique marker in the
message, or the pid of the task that ran the program) and expect the rest to
be noise; :func:`unique_marker` makes such a marker.

Each line of ``trace_pipe`` looks like::

    python-10100   [000] b..11   682.100106: bpf_trace_printk: hello 42

that is ``task-pid``, an optional ``(tgid)``, ``[cpu]``, the optional
latency flags, the timestamp in seconds, the event name and the message. A
message with embedded newlines spans several lines; the lines that follow
belong to the entry before them.
"""

from __future__ import annotations

import os
import re
import select
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pykex.btf.tracefs import tracefs_root

_ENTRY = re.compile(
    r"^\s*(?P<task>.*?)-(?P<pid>\d+)\s+"
    r"(?:\(\s*[\d-]+\)\s+)?"  # tgid, with the record-tgid option
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>\S+)\s+)?"
    r"(?P<timestamp>\d+\.\d+):\s+"
    r"(?P<event>[\w.]+):\s?(?P<message>.*)$"
)
_READ_SIZE = 1 << 16


@dataclass(frozen=True)
class TraceLine:
    """One entry of the trace buffer."""

    task: str  # the comm of the task that was running, "<...>" if unknown
    pid: int  # its thread id
    cpu: int
    timestamp: float  # seconds, on the trace clock
    message: str  # without the trailing newline
    event: str = "bpf_trace_printk"
    flags: str = ""


def parse_trace_lines(text: str) -> list[TraceLine]:
    """Entries of ``trace_pipe`` text; continuation lines join the entry before them.

    Lines before the first entry header (a torn start) are dropped.
    """
    entries: list[TraceLine] = []
    continuation: list[str] = []

    def finish() -> None:
        if entries and continuation:
            last = entries[-1]
            message = "\n".join([last.message, *continuation]).rstrip("\n")
            entries[-1] = TraceLine(
                last.task, last.pid, last.cpu, last.timestamp, message, last.event, last.flags
            )
        continuation.clear()

    for line in text.split("\n"):
        match = _ENTRY.match(line)
        if match is None:
            continuation.append(line)
            continue
        finish()
        entries.append(
            TraceLine(
                task=match["task"],
                pid=int(match["pid"]),
                cpu=int(match["cpu"]),
                timestamp=float(match["timestamp"]),
                message=match["message"],
                event=match["event"],
                flags=match["flags"] or "",
            )
        )
    finish()
    return entries


def unique_marker(prefix: str = "pykex") -> str:
    """A string no one else prints, to find one's own lines in the shared buffer."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class TraceFilter:
    """Which lines a reader wants: containing ``marker``, from ``pid``, or both."""

    marker: str | None = None
    pid: int | None = None

    def __call__(self, line: TraceLine) -> bool:
        if self.marker is not None and self.marker not in line.message:
            return False
        return self.pid is None or line.pid == self.pid


class TracePipe:
    """A non-blocking reader of ``trace_pipe``.

    ``lines(timeout)`` yields entries as they come, ``read(timeout)`` returns
    what is there, and ``wait_for(marker=..., count=...)`` collects one's own
    lines. Lines other filters reject are counted in :attr:`skipped`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else tracefs_root()
        path = self.root / "trace_pipe"
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as failure:
            raise OSError(failure.errno, f"cannot open {path}: {failure.strerror}") from None
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        self._pending = b""  # an incomplete last line, kept for the next read
        self.skipped = 0

    def fileno(self) -> int:
        return self._fd

    @property
    def tracing_on(self) -> bool:
        """Whether the trace buffer records at all (``tracing_on``)."""
        return (self.root / "tracing_on").read_text().strip() == "1"

    def _read_available(self) -> list[TraceLine]:
        chunks = [self._pending]
        while True:
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
        complete, _, self._pending = data.rpartition(b"\n")
        return parse_trace_lines(complete.decode(errors="replace")) if complete else []

    def read(self, timeout: float = 0.0) -> list[TraceLine]:
        """The entries available now, waiting up to ``timeout`` seconds for the first."""
        entries = self._read_available()
        if not entries and timeout > 0 and self._poll.poll(timeout * 1000):
            entries = self._read_available()
        return entries

    def lines(
        self, timeout: float = 1.0, *, marker: str | None = None, pid: int | None = None
    ) -> Iterator[TraceLine]:
        """Yield matching entries; stop once none arrived for ``timeout`` seconds."""
        wanted = TraceFilter(marker, pid)
        idle_until = time.monotonic() + timeout
        while (left := idle_until - time.monotonic()) > 0:
            for entry in self.read(left):
                if wanted(entry):
                    idle_until = time.monotonic() + timeout
                    yield entry
                else:
                    self.skipped += 1

    def wait_for(
        self,
        marker: str | None = None,
        *,
        pid: int | None = None,
        count: int = 1,
        timeout: float = 2.0,
    ) -> list[TraceLine]:
        """Collect at least ``count`` matching entries within ``timeout`` seconds
        in all (every match read by then is returned).

        Raises ``TimeoutError`` saying how many arrived when fewer did.
        """
        wanted = TraceFilter(marker, pid)
        found: list[TraceLine] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and (left := deadline - time.monotonic()) > 0:
            for entry in self.read(left):
                if wanted(entry):
                    found.append(entry)
                else:
                    self.skipped += 1
        if len(found) < count:
            hint = "" if self.tracing_on else "; tracing is off (tracing_on is 0)"
            raise TimeoutError(
                f"{len(found)} of {count} trace lines matching {wanted} arrived "
                f"within {timeout} s{hint}"
            )
        return found

    def close(self) -> None:
        if self._fd >= 0:
            self._poll.unregister(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TracePipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
