"""User symbols: addresses of live processes named through /proc/PID/maps and ELF.

A small C program (built here with gcc, as a position-independent and as a
fixed-address executable, linked with a shared library) prints where its
functions are; ``nm`` and the process's maps give the same addresses
independently, and ``sym`` must name them.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pykex.runtime.usyms import (
    UNKNOWN,
    ElfSymbolTable,
    ProcessSymbols,
    process_symbols,
    read_mappings,
    sym,
)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

LIBRARY = r"""
__attribute__((noinline)) int pykex_lib_target(int x) { return x * 5 + 2; }
/* The address is taken here so that a fixed-address executable does not
   replace it with a PLT entry of its own. */
void *pykex_lib_address(void) { return (void *)pykex_lib_target; }
"""

PROGRAM = r"""
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
extern void *pykex_lib_address(void);
__attribute__((noinline)) int pykex_probe_target(int x) { return x * 3 + 1; }
static __attribute__((noinline, used)) int pykex_static_target(int x) { return x + 7; }
int main(void) {
    void *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("%p %p %p %p\n", (void *)pykex_probe_target, (void *)pykex_static_target,
           pykex_lib_address(), anon);
    fflush(stdout);
    pause();
    return pykex_probe_target(1) + pykex_static_target(2);
}
"""


@dataclass
class Demo:
    pid: int
    exe: Path
    probe: int
    static: int
    lib: int
    anon: int


Starter = Callable[[str | Path], Demo]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("usyms")
    (out / "lib.c").write_text(LIBRARY)
    (out / "main.c").write_text(PROGRAM)
    gcc = ["gcc", "-O1", "-fno-inline"]
    subprocess.run([*gcc, "-shared", "-fPIC", "-o", out / "libpykexdemo.so", out / "lib.c"],
                   check=True)
    variants = {"demo_pie": ["-pie", "-fPIE"], "demo_fixed": ["-no-pie", "-fno-pie"],
                "demo_stripped": ["-pie", "-fPIE", "-rdynamic"]}
    for name, flags in variants.items():
        subprocess.run([*gcc, *flags, "-o", out / name, out / "main.c", f"-L{out}",
                        "-lpykexdemo", f"-Wl,-rpath,{out}"], check=True)
    subprocess.run(["strip", out / "demo_stripped"], check=True)
    return out


def _start(exe: Path) -> tuple[subprocess.Popen[str], Demo]:
    child = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    probe, static, lib, anon = (int(x, 16) for x in child.stdout.readline().split())
    return child, Demo(child.pid, exe, probe, static, lib, anon)


@pytest.fixture
def run(build: Path) -> Iterator[Starter]:
    children: list[subprocess.Popen[str]] = []

    def start(name: str | Path) -> Demo:
        child, demo = _start(build / name)
        children.append(child)
        return demo

    yield start
    for child in children:
        child.kill()
        child.wait()


def _nm_value(path: Path, name: str, dynamic: bool = False) -> int:
    listing = subprocess.run(["nm", *(["-D"] if dynamic else []), str(path)],
                             capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == name:
            return int(fields[0], 16)
    raise AssertionError(f"nm finds no {name} in {path}")


def _load_base(pid: int, path: Path) -> int:
    """Where the file's offset 0 is mapped, read from /proc/PID/maps by hand."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[5] == str(path) and int(fields[2], 16) == 0:
            return int(fields[0].split("-")[0], 16)
    raise AssertionError(f"{path} is not mapped in {pid}")


@pytest.mark.parametrize("variant", ["demo_pie", "demo_fixed"])
def test_executable_functions_by_address(run: Starter, build: Path, variant: str) -> None:
    demo = run(variant)
    value = _nm_value(demo.exe, "pykex_probe_target")
    expected = value if variant == "demo_fixed" else _load_base(demo.pid, demo.exe) + value
    assert demo.probe == expected  # nm + maps agree with the program itself
    assert sym(demo.probe, demo.pid) == "pykex_probe_target"
    assert sym(demo.probe + 4, demo.pid, show_offset=True) == "pykex_probe_target+0x4"
    assert sym(demo.probe, demo.pid, show_module=True) == f"pykex_probe_target [{variant}]"
    assert sym(demo.static, demo.pid) == "pykex_static_target"  # local symbols too


def test_shared_library_function(run: Starter, build: Path) -> None:
    demo = run("demo_pie")
    library = build / "libpykexdemo.so"
    assert demo.lib == _load_base(demo.pid, library) + _nm_value(library, "pykex_lib_target")
    found = ProcessSymbols(demo.pid).resolve(demo.lib + 2)
    assert found is not None
    assert (found.name, found.offset, found.module) == ("pykex_lib_target", 2, str(library))
    assert found.format(show_offset=True, show_module=True) == (
        "pykex_lib_target+0x2 [libpykexdemo.so]"
    )


def test_stripped_executable_uses_dynamic_symbols(run: Starter) -> None:
    demo = run("demo_stripped")
    assert sym(demo.probe, demo.pid) == "pykex_probe_target"
    assert sym(demo.static, demo.pid) == UNKNOWN  # a local symbol, stripped away


def test_deleted_executable_still_resolves(run: Starter, build: Path, tmp_path: Path) -> None:
    copy = tmp_path / "demo_copy"
    shutil.copy(build / "demo_pie", copy)
    demo = run(copy)
    copy.unlink()
    assert any(m.deleted for m in read_mappings(demo.pid))
    if os.geteuid() != 0:
        pytest.skip("/proc/PID/map_files needs root")
    assert ProcessSymbols(demo.pid).sym(demo.probe) == "pykex_probe_target"


def test_addresses_without_symbols(run: Starter) -> None:
    demo = run("demo_pie")
    syms = ProcessSymbols(demo.pid)
    assert syms.resolve(8) is None and syms.sym(8) == UNKNOWN
    assert syms.sym(demo.anon) == UNKNOWN
    stack = next(m for m in syms.mappings if m.path == "[stack]")
    assert syms.sym(stack.start, show_module=True) == "[unknown] [[stack]]"
    assert sym(demo.probe, 2**22 + 12345) == UNKNOWN  # no such pid


def test_jit_code_named_from_perf_map(run: Starter) -> None:
    demo = run("demo_pie")
    perf_map = Path(f"/tmp/perf-{demo.pid}.map")
    try:
        perf_map.write_text(f"{demo.anon:x} 40 pykex_jit_function\n")
        assert sym(demo.anon + 0x10, demo.pid, show_offset=True) == "pykex_jit_function+0x10"
        assert sym(demo.anon + 0x40, demo.pid) == UNKNOWN  # past its size
    finally:
        perf_map.unlink()


def test_library_loaded_later_is_found(build: Path, tmp_path: Path) -> None:
    """The maps are read again when an address is in none of them (dlopen)."""
    syms = ProcessSymbols(os.getpid())
    library = tmp_path / "libpykexlater.so"
    shutil.copy(build / "libpykexdemo.so", library)
    loaded = ctypes.CDLL(str(library))
    address = ctypes.cast(loaded.pykex_lib_target, ctypes.c_void_p).value
    assert address is not None
    assert syms.sym(address, show_module=True) == "pykex_lib_target [libpykexlater.so]"


def test_python_process_libc_function() -> None:
    address = ctypes.cast(ctypes.CDLL(None).getpid, ctypes.c_void_p).value
    assert address is not None
    found = ProcessSymbols(os.getpid()).resolve(address)
    assert found is not None and found.offset == 0
    libc = Path(found.module)
    value = address - _load_base(os.getpid(), libc)
    aliases = {
        fields[2].split("@")[0]
        for line in subprocess.run(["nm", "-D", "--defined-only", str(libc)], capture_output=True,
                                   text=True, check=True).stdout.splitlines()
        if len(fields := line.split()) == 3
        and int(fields[0], 16) == value
    }
    assert "getpid" in aliases and found.name in aliases


def test_symbol_tables_are_read_once_per_file_version(build: Path, tmp_path: Path) -> None:
    library = tmp_path / "libcopy.so"
    shutil.copy(build / "libpykexdemo.so", library)
    first = ElfSymbolTable.for_file(str(library))
    assert first is not None and len(first) >= 2
    assert ElfSymbolTable.for_file(str(library)) is first
    library.unlink()
    shutil.copy(build / "demo_pie", library)  # a new file at the same path
    assert ElfSymbolTable.for_file(str(library)) is not first
    (tmp_path / "text").write_text("not an ELF file")
    assert ElfSymbolTable.for_file(str(tmp_path / "text")) is None


def test_processes_are_kept_and_missing_ones_refused(run: Starter) -> None:
    demo = run("demo_pie")
    assert process_symbols(demo.pid) is process_symbols(demo.pid)
    with pytest.raises(ProcessLookupError, match="no process with pid"):
        ProcessSymbols(2**22 + 12345)
