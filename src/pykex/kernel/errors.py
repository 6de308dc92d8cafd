"""Errors raised by the kernel interface.

Every failed bpf(2) call raises a :class:`BPFError` (an ``OSError``) that names
the command, keeps errno and adds what the user can do about it. Failures with
a distinct remedy get their own class, so callers can ``except`` precisely.
"""

from __future__ import annotations

import errno as errno_codes
import os
import re

# The kernel's internal 'operation not supported', which leaks to user space.
ENOTSUPP = 524


class BPFError(OSError):
    """A bpf(2) or related system call failed.

    ``command`` names what failed (``"BPF_MAP_CREATE"``, ``"perf_event_open"``);
    ``errno`` and ``strerror`` are the kernel's own words.
    """

    def __init__(self, command: str, err: int, detail: str = "") -> None:
        self.command = command
        self.detail = detail
        message = f"{command}: {os.strerror(err)}"
        if detail:
            message += f" ({detail})"
        super().__init__(err, message)

    def __str__(self) -> str:
        return str(self.strerror)


class PermissionDeniedError(BPFError, PermissionError):
    """The process lacks a capability the kernel requires."""


class NotSupportedError(BPFError):
    """This kernel lacks a feature; ``feature`` names it."""

    def __init__(self, command: str, err: int, feature: str) -> None:
        self.feature = feature
        super().__init__(command, err, f"this kernel does not support {feature}")


class KeyNotFoundError(BPFError, KeyError):
    """A map lookup or delete found no such key."""

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return str(self.strerror)


_LOG_NOISE = re.compile(
    r"^(processed \d+ insns|verification time|stack depth|mark_precise|"
    r"max_states_per_insn|-- BEGIN PROG LOAD LOG --|-- END PROG LOAD LOG --)"
)


def summarize_verifier_log(log: str) -> str:
    """The verifier's last meaningful line: what it objected to.

    The log ends with statistics ("processed N insns ...") after the error; the
    error itself is the last line that is not such bookkeeping.
    """
    for line in reversed(log.strip().splitlines()):
        line = line.strip()
        if line and not _LOG_NOISE.match(line):
            return line
    return "the verifier gave no reason"


class VerifierError(BPFError):
    """The verifier rejected a program.

    ``log`` is the full verifier log, ``summary`` its one-line reason, and
    ``truncated`` tells whether the kernel cut the log short.
    """

    def __init__(self, command: str, err: int, log: str, truncated: bool = False) -> None:
        self.log = log
        self.summary = summarize_verifier_log(log)
        self.truncated = truncated
        super().__init__(command, err, f"verifier: {self.summary}")

    @property
    def lines(self) -> list[str]:
        return self.log.splitlines()

    def tail(self, count: int = 20) -> str:
        return "\n".join(self.lines[-count:])


class BTFLoadError(BPFError):
    """The kernel rejected BTF; ``log`` holds its reason."""

    def __init__(self, command: str, err: int, log: str) -> None:
        self.log = log
        self.summary = summarize_verifier_log(log) if log.strip() else ""
        super().__init__(command, err, f"BTF: {self.summary}" if self.summary else "")


def error_from_errno(command: str, err: int, feature: str | None = None) -> BPFError:
    """The most specific error class for ``err`` raised by ``command``.

    ``feature`` describes what the call asked of the kernel ("map type
    lpm_trie"); it turns EINVAL/EOPNOTSUPP into a message that names it.
    """
    if err == errno_codes.EPERM or err == errno_codes.EACCES:
        return PermissionDeniedError(
            command,
            err,
            "needs CAP_BPF (and CAP_PERFMON or CAP_NET_ADMIN for some program types), "
            "or CAP_SYS_ADMIN; run as root",
        )
    if err == errno_codes.ENOENT and command.startswith("BPF_MAP_"):
        return KeyNotFoundError(command, err)
    if feature and err in (errno_codes.EINVAL, errno_codes.EOPNOTSUPP, ENOTSUPP):
        return NotSupportedError(command, err, feature)
    return BPFError(command, err)
