"""The front end's driver: source text to diagnostics or :class:`ModuleIR`."""

from __future__ import annotations

import ast
import traceback
from pathlib import Path

from pykex.ir.nodes import MapDecl, ModuleIR, ProgramIR
from pykex.lang.diagnostics import CompileError, Diagnostic, Reporter, SourceError
from pykex.lang.lower import FunctionLowering, ModuleLowering
from pykex.lang.module import (
    BPF_F_RDONLY_PROG,
    Module,
    TracepointSource,
    analyse,
    section_maps,
)
from pykex.lang.resources import DISABLED_MAP, DROPS_MAP

REPORT_URL_HINT = "this is a bug in pykex; please report it with the source that triggered it"


def _read(source: str | Path, filename: str | None) -> tuple[str, str]:
    if isinstance(source, Path):
        return source.read_text(), filename or str(source)
    return source, filename or "<string>"


def _compile(text: str, filename: str, tracepoints: TracepointSource | None
             ) -> tuple[Reporter, ModuleIR | None]:
    reporter = Reporter(filename, text)
    try:
        tree = ast.parse(text, filename)
    except SyntaxError as error:
        reporter.at(error.lineno or 1, max((error.offset or 1) - 1, 0),
                    f"invalid syntax: {error.msg}")
        return reporter, None
    module = Module(filename, text, tree, reporter)
    try:
        analyse(module, tracepoints)
        recursive = _report_recursion(module)
        result = _lower(module, recursive)
    except SourceError as error:  # an error no statement handler caught
        reporter.record(error)
        return reporter, None
    except Exception as crash:  # any crash here is a pykex bug, never the user's
        frame = traceback.extract_tb(crash.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        reporter.at(1, 0, f"internal compiler error: {type(crash).__name__} {crash} at {where}",
                    REPORT_URL_HINT)
        return reporter, None
    return reporter, result


def _lower(module: Module, recursive: set[str]) -> ModuleIR:
    shared = ModuleLowering(module)
    programs = []
    called: set[str] = set()
    for decl in module.functions.values():
        if decl.program is None:
            continue
        lowering = FunctionLowering(shared, decl.name, recursive, decl.program)
        function = lowering.lower_program(decl)
        called |= _calls(decl.node, module)
        programs.append(ProgramIR(decl.name, decl.program.kind, function,
                                  decl.program.on_error, dict(decl.program.attach),
                                  module.loc(decl.node, decl.name)))
    for decl in module.functions.values():
        if decl.program is None and decl.name not in called and decl.name not in recursive:
            FunctionLowering(shared, decl.name, recursive).lower_standalone(decl)
    maps: list[MapDecl] = [info.decl for info in module.maps.values()]
    for decl in maps:
        if decl.kind in ("RINGBUF", "PERF_EVENT_ARRAY"):
            decl.record_type = shared.record_type(decl.name)
    maps += section_maps(module)
    maps += runtime_globals(shared)
    if shared.rodata:
        from pykex import layout

        maps.append(MapDecl(".rodata", "ARRAY", 4, len(shared.rodata), 1,
                            flags=BPF_F_RDONLY_PROG, initial=bytes(shared.rodata),
                            key_type=layout.u32, value_type=layout.Bytes[len(shared.rodata)]))
    return ModuleIR(module.filename, module.source, maps, programs, module.license)


def runtime_globals(shared: ModuleLowering) -> list[MapDecl]:
    """The globals the runtime keeps for the module, as single-element arrays whose
    value is a Struct with one field per ring (drops) or per program (disabled)."""
    from pykex import layout

    out = []
    for name, members, field_type, struct in (
        (DROPS_MAP, shared.drop_counters, layout.u64, "RingDrops"),
        (DISABLED_MAP, shared.crash_flags, layout.u32, "DisabledPrograms"),
    ):
        if not members:
            continue
        value = layout.make_struct(struct, [(m, field_type) for m in members])
        out.append(MapDecl(name, "ARRAY", 4, value.size, 1, key_type=layout.u32,
                           value_type=value))
    return out


def _calls(node: ast.FunctionDef, module: Module) -> set[str]:
    """Module functions reachable from ``node`` through calls."""
    seen: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        for callee in _direct_calls(current, module):
            if callee not in seen:
                seen.add(callee)
                stack.append(module.functions[callee].node)
    return seen


def _direct_calls(node: ast.FunctionDef, module: Module) -> list[str]:
    return [
        n.func.id
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        and n.func.id in module.functions
    ]


def _report_recursion(module: Module) -> set[str]:
    """Report each call cycle once, at the call that closes it; return the
    functions on a cycle (their calls are not inlined)."""
    on_cycle: set[str] = set()
    reported: set[frozenset[str]] = set()

    def visit(name: str, path: list[str]) -> None:
        decl = module.functions[name]
        for call in ast.walk(decl.node):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                    and call.func.id in module.functions):
                continue
            callee = call.func.id
            if callee in path:
                cycle = [*path[path.index(callee):], callee]
                on_cycle.update(cycle)
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    module.reporter.error(call, "recursion is not supported: "
                                          + " -> ".join(cycle),
                                          "rewrite it as a loop")
                continue
            if callee not in done:
                visit(callee, [*path, callee])
        done.add(name)

    done: set[str] = set()
    for name in module.functions:
        if name not in done:
            visit(name, [name])
    return on_cycle


def check(source: str | Path, filename: str | None = None, *,
          tracepoints: TracepointSource | None = None) -> list[Diagnostic]:
    """All diagnostics for an extension (empty when it is valid).

    ``source`` is the text of the module, or a :class:`~pathlib.Path` to read;
    ``filename`` is what diagnostics call it. ``tracepoints(group, name)``
    supplies tracepoint formats (default: read from tracefs).
    """
    text, name = _read(source, filename)
    reporter, _ = _compile(text, name, tracepoints)
    return reporter.diagnostics


def compile_to_ir(source: str | Path, filename: str | None = None, *,
                  tracepoints: TracepointSource | None = None) -> ModuleIR:
    """The extension as IR; raises :class:`CompileError` holding every diagnostic."""
    text, name = _read(source, filename)
    reporter, result = _compile(text, name, tracepoints)
    if reporter or result is None:
        raise CompileError(reporter.diagnostics)
    return result
