"""Reading, building and loading the gap corpus.

A case is a directory ``cases/<NN>_<name>/`` with ``prog.c``, an optional
``workaround.c`` and ``case.toml``. Objects are built with Debian's clang
(``-O2 -g -target bpf -mcpu=v3``) and loaded with pykex's ELF loader
(:func:`pykex.elf.reader.read_object` + :func:`pykex.elf.load.load_object`);
:func:`bpftool_load` is the independent check through libbpf. The packet
checks in ``case.toml`` run the loaded entry program with
``BPF_PROG_TEST_RUN`` and compare its verdict and map contents.

The pykex side (:func:`measure_pykex`) takes a case's ``prog.py`` through
``pykex check``, compiles it once, loads it into the kernel (processed
instructions and load time) and runs the same packet checks there and in
host mode (:func:`pykex.load_host`).
"""

from __future__ import annotations

import ast
import os
import platform
import re
import shutil
import subprocess
import time
import tokenize
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pykex.bpf.codegen import VerifierRejectionError
from pykex.compiler import Compilation
from pykex.elf.load import LoadedObject, load_object
from pykex.elf.reader import read_object
from pykex.kernel.errors import BPFError, VerifierError
from pykex.kernel.fs import BPFFS_ROOT, ensure_bpffs
from pykex.kernel.uapi import MapType
from pykex.lang import check as pykex_check
from pykex.runtime import Extension, HostExtension, load_host
from pykex.runtime import load as pykex_load

CASES_DIR = Path(__file__).parent / "cases"
CATEGORIES = {
    1: "refactoring into small programs",
    2: "hinting the compiler",
    3: "changing code to assist verification",
    4: "verifier limits and defects",
    5: "reinventing wheels",
}
XDP_VERDICTS = {"XDP_ABORTED": 0, "XDP_DROP": 1, "XDP_PASS": 2, "XDP_TX": 3, "XDP_REDIRECT": 4}
CLANG_FLAGS = ("-O2", "-g", "-target", "bpf", "-mcpu=v3")
# Debian keeps <asm/types.h> in the multiarch include directory, which clang
# does not search when targeting bpf.
MULTIARCH_INCLUDE = f"/usr/include/{platform.machine()}-linux-gnu"

MapContents = dict[str, dict[int, int | bytes]]


class CaseError(Exception):
    """A case directory or its ``case.toml`` is malformed; the message says where."""


class BuildError(Exception):
    """clang could not compile a case's C file; the message holds its diagnostics."""


@dataclass(frozen=True)
class PacketCheck:
    """One input packet, the map contents to install first and what must follow."""

    packet: bytes
    verdict: str
    setup: MapContents = field(default_factory=dict)
    expect: MapContents = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    directory: Path
    id: str
    title: str
    category: int
    behaviour: str
    status: str  # "rejected", or "loads" when the kernel no longer rejects it
    expected_error: str
    source: str
    entry: str
    workaround_cost: str = ""
    prog_arrays: dict[str, list[str]] = field(default_factory=dict)
    checks: list[PacketCheck] = field(default_factory=list)
    notes: str = ""

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def prog_c(self) -> Path:
        return self.directory / "prog.c"

    @property
    def workaround_c(self) -> Path | None:
        path = self.directory / "workaround.c"
        return path if path.exists() else None

    @property
    def prog_py(self) -> Path | None:
        """The pykex version of the program, once one is written."""
        path = self.directory / "prog.py"
        return path if path.exists() else None


def load_cases(root: Path = CASES_DIR) -> list[Case]:
    """Every case under ``root``, in directory order."""
    return [read_case(d) for d in sorted(root.iterdir()) if d.is_dir()]


def read_case(directory: Path) -> Case:
    meta_path = directory / "case.toml"
    if not meta_path.exists():
        raise CaseError(f"{directory}: no case.toml")
    if not (directory / "prog.c").exists():
        raise CaseError(f"{directory}: no prog.c")
    with meta_path.open("rb") as f:
        meta = tomllib.load(f)
    try:
        case = Case(
            directory=directory,
            id=meta["id"],
            title=meta["title"],
            category=int(meta["category"]),
            behaviour=meta["behaviour"],
            status=meta["status"],
            expected_error=meta.get("expected_error", ""),
            source=meta["source"],
            entry=meta["entry"],
            workaround_cost=meta.get("workaround", {}).get("cost", ""),
            prog_arrays=meta.get("workaround", {}).get("prog_arrays", {}),
            checks=[_packet_check(c) for c in meta.get("checks", [])],
            notes=meta.get("notes", ""),
        )
    except KeyError as missing:
        raise CaseError(f"{meta_path}: missing key {missing}") from None
    if not directory.name.startswith(f"{case.id}_"):
        raise CaseError(f"{meta_path}: id {case.id!r} does not match the directory name")
    if case.category not in CATEGORIES:
        raise CaseError(f"{meta_path}: category must be 1..5, not {case.category}")
    if case.status not in ("rejected", "loads"):
        raise CaseError(f"{meta_path}: status must be 'rejected' or 'loads'")
    if case.status == "rejected" and not case.expected_error:
        raise CaseError(f"{meta_path}: a rejected case needs expected_error")
    return case


def _packet_check(raw: Mapping[str, Any]) -> PacketCheck:
    verdict = raw["verdict"]
    if verdict not in XDP_VERDICTS:
        raise CaseError(f"unknown verdict {verdict!r}")
    return PacketCheck(
        packet=_hex(raw["packet"]),
        verdict=verdict,
        setup=_map_contents(raw.get("setup", {})),
        expect=_map_contents(raw.get("expect", {})),
    )


def _map_contents(raw: Mapping[str, Mapping[str, Any]]) -> MapContents:
    """``{map: {"key": int or "hex:..."}}`` as ints and bytes (TOML keys are strings)."""
    return {
        name: {int(key): _value(value) for key, value in entries.items()}
        for name, entries in raw.items()
    }


def _value(value: int | str) -> int | bytes:
    if isinstance(value, int):
        return value
    if value.startswith("hex:"):
        return _hex(value[4:])
    raise CaseError(f"map value {value!r} is neither an int nor 'hex:...'")


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def c_lines(path: Path) -> int:
    """Lines of C that are neither blank nor comments (the cost the author pays)."""
    count = 0
    in_block = False
    for line in path.read_text().splitlines():
        text = line.strip()
        if in_block:
            in_block = "*/" not in text
            continue
        if text.startswith("/*"):
            in_block = "*/" not in text
            continue
        if text and not text.startswith("//"):
            count += 1
    return count


def python_lines(path: Path) -> int:
    """Lines of Python that are neither blank, comments nor docstrings (the
    counterpart of :func:`c_lines`)."""
    docstrings = _docstring_lines(ast.parse(path.read_text(), str(path)))
    code_lines: set[int] = set()
    with path.open("rb") as source:
        for token in tokenize.tokenize(source.readline):
            if token.type in _NOT_CODE:
                continue
            code_lines.update(range(token.start[0], token.end[0] + 1))
    return len(code_lines - docstrings)


_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
             tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}


def _docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def build(source: Path, out_dir: Path) -> Path:
    """Compile ``source`` with clang into ``out_dir``; the object's path."""
    out = out_dir / f"{source.parent.name}-{source.stem}.o"
    command = ["clang", *CLANG_FLAGS, "-I", MULTIARCH_INCLUDE, "-c", str(source), "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{source}: clang failed:\n{result.stderr}")
    return out


@dataclass
class LoadOutcome:
    """What happened when an object was loaded: everything loaded, or why not."""

    loaded: bool
    error: str = ""  # the verifier's one-line reason (or the loader's message)
    program: str = ""  # the program the verifier rejected
    processed: dict[str, int] = field(default_factory=dict)  # insns processed per program
    log: str = ""
    check_failures: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "loads" if self.loaded else "rejected"


_PROCESSED = re.compile(r"processed (\d+) insns")


def load(obj: Path, case: Case | None = None) -> LoadOutcome:
    """Load ``obj`` with pykex's loader; when it loads and ``case`` is given,
    fill its program arrays and run its packet checks. Everything is closed
    before returning."""
    try:
        spec = read_object(obj.read_bytes())
        # Level 1 skips the log-less first attempt, which would only repeat
        # the whole verification of a rejected program.
        loaded = load_object(spec, log_level=1)
    except VerifierError as rejection:
        name = rejection.command.split()[-1] if rejection.command else ""
        return LoadOutcome(False, rejection.summary, name, log=rejection.log)
    except (BPFError, ValueError) as failure:
        return LoadOutcome(False, f"{type(failure).__name__}: {failure}")
    with loaded:
        processed = {}
        for name, program in loaded.programs.items():
            match = _PROCESSED.search(program.verifier_log)
            if match:
                processed[name] = int(match.group(1))
        outcome = LoadOutcome(True, processed=processed)
        if case is not None:
            outcome.check_failures = run_checks(loaded, case)
    return outcome


def run_checks(loaded: LoadedObject, case: Case) -> list[str]:
    """Run every packet check of ``case`` on a fresh copy of the maps' state;
    a description of each mismatch (empty when all hold)."""
    for array, programs in case.prog_arrays.items():
        for slot, program in enumerate(programs):
            loaded.maps[array][slot] = loaded.programs[program]
    failures = []
    entry = loaded.programs[case.entry]
    for number, check in enumerate(case.checks, 1):
        _reset_maps(loaded, skip=case.prog_arrays)
        for name, entries in check.setup.items():
            for key, value in entries.items():
                loaded.maps[name][key] = value
        result = entry.test_run(check.packet)
        expected = XDP_VERDICTS[check.verdict]
        if result.retval != expected:
            failures.append(f"check {number}: verdict {result.retval}, expected {expected}")
        for name, entries in check.expect.items():
            for key, value in entries.items():
                actual = _comparable(loaded.maps[name][key])
                if actual != value:
                    failures.append(f"check {number}: {name}[{key}] is {actual!r}, not {value!r}")
    return failures


def _reset_maps(loaded: LoadedObject, skip: Mapping[str, Any]) -> None:
    """Empty hash maps and zero array maps, so each check starts clean.

    Global-data maps (``.rodata``, ``.data``...) and program arrays keep their
    contents: they are the program's constants and wiring, not its state.
    """
    for map_spec in loaded.spec.maps:
        if map_spec.name in skip or map_spec.name.startswith("."):
            continue
        kernel_map = loaded.maps[map_spec.name]
        arrays = (MapType.ARRAY, MapType.PERCPU_ARRAY)
        for key, value in kernel_map.items():
            if map_spec.type in arrays:
                kernel_map[key] = _zero_like(value)
            else:
                del kernel_map[key]


def _zero_like(value: Any) -> Any:
    if isinstance(value, list):
        return [_zero_like(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(len(value))
    return 0


def _comparable(value: Any) -> int | bytes:
    """Map values as the checks state them: per-CPU values summed, bytes as bytes."""
    if isinstance(value, list):
        return sum(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def bpftool_load(obj: Path) -> LoadOutcome:
    """Load ``obj`` with ``bpftool prog loadall`` (libbpf) as an independent check.

    The programs are pinned under a fresh directory in bpffs, which is removed
    whatever happens.
    """
    ensure_bpffs()
    pin_dir = Path(BPFFS_ROOT) / f"pykex-gap-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        result = subprocess.run(
            ["bpftool", "prog", "loadall", str(obj), str(pin_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)
    if result.returncode == 0:
        return LoadOutcome(True)
    return LoadOutcome(False, _libbpf_verifier_reason(result.stderr), log=result.stderr)


def _libbpf_verifier_reason(stderr: str) -> str:
    """The verifier's last line inside libbpf's ``-- BEGIN/END PROG LOAD LOG --``."""
    lines = stderr.splitlines()
    if "-- END PROG LOAD LOG --" in lines:
        end = lines.index("-- END PROG LOAD LOG --")
        for line in reversed(lines[:end]):
            if line.strip() and not _LOG_BOOKKEEPING.match(line):
                return line.strip()
    return lines[-1].strip() if lines else "bpftool failed without output"


_LOG_BOOKKEEPING = re.compile(r"^(processed \d+ insns|verification time|stack depth)")


# -- the pykex side -------------------------------------------------------------------


@dataclass
class PykexOutcome:
    """What a case's ``prog.py`` did: how far it got, and how it behaved.

    ``stage`` is the first step that failed (``"check"``: ``pykex check``
    reported a diagnostic; ``"compile"``: the backend refused; ``"load"``: the
    kernel refused the generated code, a pykex bug by definition), or
    ``"done"``. Check failures are listed per mode.
    """

    stage: str
    error: str = ""
    processed: dict[str, int] = field(default_factory=dict)  # insns per program
    load_ms: float = 0.0
    kernel_failures: list[str] = field(default_factory=list)
    host_failures: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return self.stage == "done"

    @property
    def behaves(self) -> bool:
        return self.loaded and not self.kernel_failures and not self.host_failures


def measure_pykex(case: Case, *, kernel: bool = True) -> PykexOutcome:
    """Take ``case``'s ``prog.py`` through ``pykex check``, compilation, the
    packet checks in host mode and (with ``kernel``) a kernel load and the
    kernel's checks. Host and kernel results are independent: one mode
    failing does not hide the other."""
    if case.prog_py is None:
        raise CaseError(f"{case.directory}: no prog.py")
    diagnostics = pykex_check(case.prog_py)
    if diagnostics:
        first = diagnostics[0]
        return PykexOutcome("check", f"line {first.line}: {first.message}")
    compilation = Compilation(case.prog_py)
    try:
        compilation.compiled  # noqa: B018 (compile once; both modes reuse it)
    except Exception as failure:  # a backend failure is a result to report
        return PykexOutcome("compile", _describe(failure))
    outcome = PykexOutcome("done", host_failures=_checked(lambda: load_host(compilation), case))
    if not kernel:
        return outcome
    started = time.perf_counter()
    try:
        extension = pykex_load(compilation)
    except VerifierRejectionError as rejection:
        outcome.stage, outcome.error = "load", rejection.verifier_error.summary
        return outcome
    except BPFError as failure:
        outcome.stage, outcome.error = "load", _describe(failure)
        return outcome
    outcome.load_ms = (time.perf_counter() - started) * 1000
    outcome.processed = {
        name: program.program.info().verified_insns for name, program in extension.programs.items()
    }
    outcome.kernel_failures = _checked(lambda: extension, case)
    return outcome


def _checked(
    open_extension: Callable[[], Extension | HostExtension], case: Case
) -> list[str]:
    """The check failures of the extension ``open_extension`` gives, which is
    closed afterwards; a run that crashes (a pykex bug) is one failure."""
    try:
        with open_extension() as extension:
            return run_pykex_checks(extension, case)
    except Exception as failure:  # a crash is a result to report
        return [f"crashed: {_describe(failure)}"]


def _describe(failure: BaseException) -> str:
    return f"{type(failure).__name__}: {_last_line(str(failure))}"


def run_pykex_checks(extension: Extension | HostExtension, case: Case) -> list[str]:
    """Run every packet check of ``case`` on the pykex extension, from cleared
    maps; a description of each mismatch (empty when all hold). A check also
    fails when the run raised: the verdict must come from the program's own
    logic, not from its ``on_error``."""
    entry = extension.programs.get(case.entry)
    if entry is None:
        return [f"prog.py has no program {case.entry!r} (it has {', '.join(extension.programs)})"]
    failures = []
    for number, check in enumerate(case.checks, 1):
        for name, view in extension.maps.items():
            if not name.startswith("."):  # globals are the program's constants
                view.clear()
        for name, entries in check.setup.items():
            for key, value in entries.items():
                extension.maps[name][key] = value
        result = entry.test_run(check.packet)
        if result.exception is not None:
            failures.append(f"check {number}: raised {_last_line(str(result.exception))}")
        expected = XDP_VERDICTS[check.verdict]
        if result.retval != expected:
            failures.append(f"check {number}: verdict {result.retval}, expected {expected}")
        for name, entries in check.expect.items():
            view = extension.maps[name]
            for key, value in entries.items():
                actual = _pykex_comparable(view.value_type, view[key], value)
                if actual != value:
                    failures.append(f"check {number}: {name}[{key}] is {actual!r}, not {value!r}")
    return failures


def _pykex_comparable(value_type: Any, value: Any, expected: int | bytes) -> int | bytes:
    """A typed map value as the checks state it: per-CPU values summed, and
    Structs or Arrays as their bytes when the check gives bytes."""
    if isinstance(value, list) and not isinstance(expected, bytes):
        return sum(value)
    if isinstance(expected, bytes):
        return value if isinstance(value, bytes) else value_type.encode(value)
    return value


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else text
