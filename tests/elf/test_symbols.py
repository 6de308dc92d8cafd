"""Symbol lookup in ELF files, checked against where the loader really maps code.

Each test program reports, from /proc/self/maps, the file offset of the code
at a function's address: the same (file, offset) pair a uprobe needs. The
parser must arrive at that offset from the file alone.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pykex.elf.symbols import (
    ElfFile,
    ELFFormatError,
    SymbolNotFoundError,
    SymbolType,
    symbol_file_offset,
)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

WHERE_SOURCE = r"""
#include <stdio.h>
#include <unistd.h>

#ifdef WITH_LIBRARY
extern int pkx_library_function(int x);
#endif

__attribute__((noinline)) int pkx_local_function(int x) {
    __asm__ volatile("" ::: "memory");
    return x * 3;
}

/* Print "name offset path" for the mapping that holds addr. */
static void where(const char *name, void *addr) {
    char line[4096], perms[8], path[4096];
    unsigned long start, end, offset;
    FILE *maps = fopen("/proc/self/maps", "r");
    while (fgets(line, sizeof line, maps)) {
        path[0] = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &start, &end, perms, &offset,
                   path) < 4)
            continue;
        if ((unsigned long)addr >= start && (unsigned long)addr < end) {
            printf("%s %lx %s\n", name, (unsigned long)addr - start + offset, path);
            break;
        }
    }
    fclose(maps);
}

int main(void) {
    where("pkx_local_function", (void *)pkx_local_function);
    where("getpid", (void *)getpid);
#ifdef WITH_LIBRARY
    where("pkx_library_function", (void *)pkx_library_function);
#endif
    return pkx_local_function(0);
}
"""

LIBRARY_SOURCE = r"""
__attribute__((noinline)) int pkx_library_function(int x) { return x + 7; }
"""


def gcc(*args: str) -> None:
    subprocess.run(["gcc", "-O2", *args], check=True, capture_output=True)


def reported_offsets(binary: Path) -> dict[str, tuple[int, str]]:
    """name -> (file offset, mapped file) as the running program reports them."""
    output = subprocess.run([str(binary)], capture_output=True, text=True, check=False).stdout
    reports = {}
    for line in output.splitlines():
        name, offset, path = line.split()
        reports[name] = (int(offset, 16), path)
    return reports


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("elf")
    (directory / "where.c").write_text(WHERE_SOURCE)
    (directory / "library.c").write_text(LIBRARY_SOURCE)
    return directory


@pytest.mark.parametrize("pie", [True, False], ids=["pie", "fixed-address"])
def test_executable_function_offset_matches_the_mapping(build: Path, pie: bool) -> None:
    binary = build / f"where-{'pie' if pie else 'nopie'}"
    gcc(*(["-fPIE", "-pie"] if pie else ["-fno-pie", "-no-pie"]),
        "-o", str(binary), str(build / "where.c"))  # fmt: skip
    offset, path = reported_offsets(binary)["pkx_local_function"]
    assert Path(path) == binary
    assert symbol_file_offset(str(binary), "pkx_local_function") == offset


def test_shared_library_function_offsets_match_the_mapping(build: Path) -> None:
    library = build / "libpkx.so"
    gcc("-shared", "-fPIC", "-o", str(library), str(build / "library.c"))
    binary = build / "where-lib"
    gcc("-DWITH_LIBRARY", "-fPIE", "-pie", "-o", str(binary), str(build / "where.c"),
        f"-L{build}", "-lpkx", f"-Wl,-rpath,{build}")  # fmt: skip
    reports = reported_offsets(binary)

    offset, path = reports["pkx_library_function"]
    assert Path(path) == library
    assert symbol_file_offset(str(library), "pkx_library_function") == offset

    # libc is stripped: getpid is found through .dynsym alone.
    offset, libc = reports["getpid"]
    assert "libc" in Path(libc).name
    assert symbol_file_offset(libc, "getpid") == offset


def test_stripped_executable_keeps_only_dynamic_symbols(build: Path) -> None:
    exported = build / "where-exported"
    gcc("-rdynamic", "-o", str(exported), str(build / "where.c"))
    subprocess.run(["strip", "--strip-all", str(exported)], check=True)
    offset, _ = reported_offsets(exported)["pkx_local_function"]
    assert symbol_file_offset(str(exported), "pkx_local_function") == offset

    hidden = build / "where-hidden"
    gcc("-o", str(hidden), str(build / "where.c"))
    subprocess.run(["strip", "--strip-all", str(hidden)], check=True)
    message = f"symbol 'pkx_local_function' not found in {hidden}"
    with pytest.raises(SymbolNotFoundError, match=message):
        symbol_file_offset(str(hidden), "pkx_local_function")


def test_symbols_carry_type_and_size(build: Path) -> None:
    binary = build / "where-symbols"
    gcc("-o", str(binary), str(build / "where.c"))
    with ElfFile(str(binary)) as elf:
        function = elf.find("pkx_local_function")
        assert function.type is SymbolType.FUNC
        assert function.size > 0
        assert any(symbol.name == "getpid" for symbol in elf.symbols())  # an import
        with pytest.raises(SymbolNotFoundError):
            elf.find("getpid")  # imports are not definitions
        assert elf.segments


def test_unreadable_files_are_refused(tmp_path: Path, build: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an executable\n" * 10)
    with pytest.raises(ELFFormatError, match="is not an ELF file"):
        symbol_file_offset(str(text), "main")

    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ELFFormatError, match="is not an ELF file"):
        symbol_file_offset(str(empty), "main")

    binary = build / "where-truncated-source"
    gcc("-o", str(binary), str(build / "where.c"))
    truncated = tmp_path / "truncated"
    truncated.write_bytes(binary.read_bytes()[:200])
    with pytest.raises(ELFFormatError, match="truncated"):
        symbol_file_offset(str(truncated), "pkx_local_function")

    elf32 = tmp_path / "elf32"
    elf32.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(60))
    with pytest.raises(ELFFormatError, match="32-bit"):
        symbol_file_offset(str(elf32), "main")

    with pytest.raises(FileNotFoundError):
        symbol_file_offset(str(tmp_path / "missing"), "main")
