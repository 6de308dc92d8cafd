"""Which CPUs exist: per-CPU map values and per-CPU perf events are sized by them."""

from __future__ import annotations

import os
from functools import cache

_CPU_ROOT = "/sys/devices/system/cpu"


def parse_cpu_list(text: str) -> list[int]:
    """CPU numbers in the kernel's list format (``0-3,8,10-11``)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


def _cpu_list(name: str) -> list[int]:
    with open(os.path.join(_CPU_ROOT, name)) as f:
        return parse_cpu_list(f.read())


def online_cpus() -> list[int]:
    """The CPUs running now: per-CPU perf events are opened on each."""
    return _cpu_list("online")


@cache
def possible_cpus() -> list[int]:
    """The possible CPUs: per-CPU map values hold one entry for each, in this order."""
    return _cpu_list("possible")


def possible_cpu_count() -> int:
    """How many CPUs the kernel sizes per-CPU map values for."""
    return max(possible_cpus()) + 1
