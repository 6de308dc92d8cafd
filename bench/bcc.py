"""Source to loaded program with BCC (``BPF(text=...)``), for comparison.

BCC compiles C at run time against the running kernel's headers. It is
Debian's ``python3-bpfcc``, importable by the system interpreter only, so
the attempt runs there, in a child process. Where BCC cannot start (a kernel
that ships no headers, say), the report says so with BCC's own words.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL_HINT = "apt-get install python3-bpfcc"

# The empty workload in BCC's dialect (BCC provides the includes and sections).
EMPTY_XDP = "int empty(struct xdp_md *ctx) { return XDP_PASS; }"

_ATTEMPT = """
import json, sys, time
started = time.perf_counter()
from bcc import BPF
imported = time.perf_counter()
bpf = BPF(text=sys.argv[1])
bpf.load_func("empty", BPF.XDP)
print(json.dumps({"import_seconds": imported - started,
                  "seconds": time.perf_counter() - imported}))
"""

_TRACEBACK_NOISE = ("Traceback ", "  File ", "    ", "sh: ")


@dataclass
class BccResult:
    status: str  # "ok", "not installed", "does not start"
    seconds: float | None = None  # BPF(text=...) + load_func, without importing bcc
    error: str = ""
    details: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.status == "ok" and self.seconds is not None:
            return f"{self.seconds * 1e3:.1f} ms"
        return f"{self.status}: {self.error}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "source_to_loaded_ms": self.seconds * 1e3 if self.seconds is not None else None,
            "error": self.error or None,
            "details": self.details,
        }


def _reason(output: str) -> tuple[str, list[str]]:
    """BCC's own explanation: its message about kernel headers if it gave one,
    otherwise the exception's last line."""
    lines = [line for line in output.splitlines() if line and not line.startswith(_TRACEBACK_NOISE)]
    for line in lines:
        if "kernel headers" in line:
            return line, lines
    return (lines[-1] if lines else "no output"), lines


def probe_bcc(timeout: float = 120.0) -> BccResult:
    """Try BCC on the empty XDP program and time it, or say why it cannot run."""
    if not os.path.exists(SYSTEM_PYTHON):
        return BccResult("not installed", error=f"no {SYSTEM_PYTHON} ({INSTALL_HINT})")
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", _ATTEMPT, EMPTY_XDP],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # BCC prints some of its complaints on stdout
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return BccResult("does not start", error=f"gave no answer within {timeout:.0f} s")
    if done.returncode == 0:
        return BccResult("ok", seconds=json.loads(done.stdout.splitlines()[-1])["seconds"])
    if "No module named 'bcc'" in done.stdout:
        return BccResult("not installed", error=f"python3-bpfcc is missing ({INSTALL_HINT})")
    reason, details = _reason(done.stdout)
    return BccResult("does not start", error=reason, details=details)
