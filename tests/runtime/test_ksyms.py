"""Kernel symbols: parsing kallsyms, names for addresses, and hidden addresses."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from pykex.runtime.ksyms import (
    CORE_MODULE,
    UNKNOWN,
    KernelSymbolNotFoundError,
    KernelSymbols,
    KernelSymbolsHiddenError,
)

SAMPLE = """\
0000000000000000 A fixed_percpu_data
ffffffff81000000 T _stext
ffffffff81000000 T startup_64
ffffffff81000100 t secondary_startup
ffffffff81000200 T do_work
ffffffff81000200 t __do_work_alias
ffffffff82000000 D jiffies
ffffffffc0001000 t helper_fn\t[veth]
ffffffffc0001040 T veth_open\t[veth]
ffffffffc0002000 t helper_fn\t[bridge]
"""


@pytest.fixture
def sample(tmp_path: Path) -> KernelSymbols:
    path = tmp_path / "kallsyms"
    path.write_text(SAMPLE)
    return KernelSymbols(str(path))


def test_names_addresses_like_bcc(sample: KernelSymbols) -> None:
    assert sample.ksym(0xFFFFFFFF81000000) == "startup_64"  # public name over "_stext"
    assert sample.ksym(0xFFFFFFFF81000150, show_offset=True) == "secondary_startup+0x50"
    assert sample.ksym(0xFFFFFFFF81000200, show_offset=True, show_module=True) == (
        "do_work+0x0 [kernel]"  # global name over a local alias
    )
    assert sample.ksym(0xFFFFFFFF82000008, show_module=True) == "jiffies [kernel]"
    assert sample.ksym(0xFFFFFFFFC0001044, show_offset=True, show_module=True) == (
        "veth_open+0x4 [veth]"
    )
    assert sample.ksym(0xFFFFFFFF80000000) == UNKNOWN
    assert sample.ksym(0x10) == UNKNOWN  # absolute symbols name no address


def test_addresses_of_names(sample: KernelSymbols) -> None:
    assert sample.ksymaddr("do_work") == 0xFFFFFFFF81000200
    assert sample.ksymaddr("helper_fn") == 0xFFFFFFFFC0001000  # the first one listed
    assert sample.ksymaddr("helper_fn", module="bridge") == 0xFFFFFFFFC0002000
    assert "veth_open" in sample and "nope" not in sample
    assert sample.modules() == {CORE_MODULE, "veth", "bridge"}
    with pytest.raises(KernelSymbolNotFoundError, match="no kernel symbol named 'nope'"):
        sample.ksymaddr("nope")
    with pytest.raises(KernelSymbolNotFoundError, match="veth:jiffies"):
        sample.ksymaddr("jiffies", module="veth")


def test_zeroed_addresses_are_reported_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "kallsyms"
    path.write_text(re.sub(r"^[0-9a-f]{16}", "0" * 16, SAMPLE, flags=re.M))
    hidden = KernelSymbols(str(path))
    assert hidden.restricted
    with pytest.raises(KernelSymbolsHiddenError, match="kptr_restrict"):
        hidden.ksym(0xFFFFFFFF81000000)
    with pytest.raises(KernelSymbolsHiddenError, match="root"):
        hidden.ksymaddr("do_work")


def test_unprivileged_view_is_recognised(tmp_path: Path) -> None:
    """kallsyms as an unprivileged user reads it: zeros, unless the machine lets
    everyone see addresses; ``restricted`` must say which."""
    if os.geteuid() != 0:
        pytest.skip("needs root to read kallsyms as another user")
    view = tmp_path / "kallsyms"
    with view.open("w") as out:
        subprocess.run(["cat", "/proc/kallsyms"], stdout=out, check=True,
                       user=65534, group=65534, extra_groups=[], cwd="/")
    lines = view.read_text().splitlines()
    assert len(lines) > 1000
    zeros = all(int(line.split()[0], 16) == 0 for line in lines)
    assert KernelSymbols(str(view)).restricted == zeros


@pytest.mark.kernel
def test_frames_of_a_sleeping_task_resolve_back() -> None:
    """The kernel names a sleeping task's frames ``name+0xoff/0xsize`` in
    /proc/PID/stack; the address ``ksymaddr(name) + off`` must come back as
    the same name and offset, and the symbol must cover its whole size."""
    kallsyms = KernelSymbols()
    names_seen = [line.split()[2] for line in Path("/proc/kallsyms").read_text().splitlines()]
    child = subprocess.Popen(["sleep", "30"])
    try:
        frames: list[tuple[str, int, int]] = []
        deadline = time.monotonic() + 5
        while not frames and time.monotonic() < deadline:
            stack = Path(f"/proc/{child.pid}/stack").read_text()
            frames = [(m[1], int(m[2], 16), int(m[3], 16))
                      for m in re.finditer(r"\] (\w+)\+0x([0-9a-f]+)/0x([0-9a-f]+)", stack)]
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait()
    unique = [f for f in frames if names_seen.count(f[0]) == 1]
    assert unique, f"no frame with a unique name in {frames}"
    for name, offset, size in unique:
        start = kallsyms.ksymaddr(name)
        assert kallsyms.ksym(start + offset, show_offset=True) == f"{name}+{offset:#x}"
        assert kallsyms.ksym(start + size - 1) == name
        assert kallsyms.ksym(start + offset, show_module=True) == f"{name} [kernel]"
