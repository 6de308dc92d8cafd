"""Module-level analysis: imports, constants, structs, maps, globals, functions.

The module is read top to bottom the way CPython would execute it, but
nothing is executed: each statement is matched against the declarations
pykex allows, constants are folded with Python's arbitrary-precision
arithmetic, and Struct layouts are computed with :mod:`pykex.layout`.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from pykex import layout
from pykex.btf import BTFError, TracepointFormat, tracepoint_format
from pykex.ir.nodes import Loc, MapDecl
from pykex.lang import names
from pykex.lang.diagnostics import Reporter, SourceError
from pykex.lang.prelude import SpinLock
from pykex.lang.types import (
    BOOL_T,
    U8_T,
    U32_T,
    U64_T,
    ArrayT,
    BoolT,
    ContextT,
    IntT,
    LiteralT,
    MapT,
    NoneT,
    StructT,
    TupleT,
    Type,
)

TracepointSource = Callable[[str, str], TracepointFormat]


def holds_lock(ty: Type) -> bool:
    """Whether values of ``ty`` contain a SpinLock (which only map values may)."""
    lt = getattr(ty, "layout", None)
    return (isinstance(lt, layout.StructType) and any(f.type is SpinLock for f in lt.fields)) or (
        isinstance(ty, ArrayT) and holds_lock(ty.element))


def lock_offset(ty: Type) -> int | None:
    """Byte offset of the SpinLock field of Struct ``ty``, if it has one."""
    if isinstance(ty, StructT):
        for f in ty.layout.fields:
            if f.type is SpinLock:
                return f.offset
    return None

BPF_F_NO_PREALLOC = 1 << 0
BPF_F_RDONLY_PROG = 1 << 7
PAGE_SIZE = 4096


@dataclass
class ProgramSpec:
    kind: str
    on_error: int
    attach: dict[str, object]
    context: ContextT
    tracepoint: TracepointFormat | None = None


@dataclass
class FunctionDecl:
    name: str
    node: ast.FunctionDef
    params: list[tuple[str, Type, ast.arg]]
    returns: Type  # NoneT when the function returns nothing
    program: ProgramSpec | None = None


@dataclass
class GlobalVar:
    name: str
    type: Type
    section: str  # ".bss" or ".data"
    offset: int
    initial: bytes
    node: ast.AST


@dataclass
class Constant:
    value: int
    type: Type  # LiteralT for untyped constants, IntT/BoolT for typed ones


@dataclass
class MapInfo:
    type: MapT
    decl: MapDecl


@dataclass
class Module:
    filename: str
    source: str
    tree: ast.Module
    reporter: Reporter
    prelude: dict[str, str] = field(default_factory=dict)
    pykex_aliases: set[str] = field(default_factory=set)
    constants: dict[str, Constant] = field(default_factory=dict)
    structs: dict[str, StructT] = field(default_factory=dict)
    maps: dict[str, MapInfo] = field(default_factory=dict)
    globals: dict[str, GlobalVar] = field(default_factory=dict)
    functions: dict[str, FunctionDecl] = field(default_factory=dict)
    byte_strings: dict[str, bytes] = field(default_factory=dict)
    tuples: dict[str, TupleT] = field(default_factory=dict)
    # Names whose declaration was reported (a function with a bad signature, an
    # unknown import): their uses are not reported again.
    reported: set[str] = field(default_factory=set)
    # The user-space part of a tool module: name -> what it is, for messages.
    userspace: dict[str, str] = field(default_factory=dict)
    license: str = "GPL"

    def loc(self, node: ast.AST, function: str = "<module>", caller: Loc | None = None) -> Loc:
        return Loc(
            self.filename,
            getattr(node, "lineno", 0),
            getattr(node, "col_offset", 0),
            function,
            caller,
        )

    def prelude_name(self, node: ast.AST) -> str | None:
        """The prelude name ``node`` refers to (``u32``, ``pykex.HashMap``), if any."""
        if isinstance(node, ast.Name):
            return self.prelude.get(node.id)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in self.pykex_aliases
            and node.attr in _PRELUDE_EXPORTS
        ):
            return node.attr
        return None

    def is_user_name(self, name: str) -> bool:
        return (
            name in self.constants
            or name in self.structs
            or name in self.maps
            or name in self.globals
            or name in self.functions
            or name in self.byte_strings
            or name in self.tuples
            or name in self.reported
        )


_PRELUDE_EXPORTS = frozenset(names.prelude.__all__) | {"print"}


# -- constant folding -------------------------------------------------------------------

_FOLD_BINARY: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.Pow: operator.pow,
}


def fold(module: Module, node: ast.expr) -> Constant:
    """The value of a constant expression, or SourceError."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            return Constant(int(node.value), BOOL_T)
        if isinstance(node.value, int):
            return Constant(node.value, LiteralT(node.value))
        if isinstance(node.value, float):
            raise SourceError(node, "floats are not supported", "use integers (u32, i64, ...)")
        raise SourceError(node, f"expected an integer constant, found {type(node.value).__name__}")
    if isinstance(node, ast.Name) and node.id in module.constants:
        return module.constants[node.id]
    if isinstance(node, ast.Name) and node.id in module.byte_strings:
        raise SourceError(node, f"{node.id} is a byte string, not an integer",
                          f"len({node.id}) and {node.id}[i] are integers")
    if (isinstance(node, ast.Attribute) and node.attr == "size"
            and isinstance(node.value, ast.Name) and node.value.id in module.structs):
        size = module.structs[node.value.id].size
        return Constant(size, LiteralT(size))
    if isinstance(node, ast.Call | ast.Subscript) and (
            folded := _fold_byte_string(module, node)) is not None:
        return folded
    if isinstance(node, ast.Call | ast.Subscript) and (
            folded := _fold_tuple(module, node)) is not None:
        return folded
    if isinstance(node, ast.Name) and node.id in module.tuples:
        raise SourceError(node, f"{node.id} is a tuple, not an integer",
                          f"len({node.id}) and {node.id}[i] are integers")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ord":
        code = ord_constant(node)
        return Constant(code, LiteralT(code))
    prelude = module.prelude_name(node)
    if prelude in names.CONSTANTS:
        value = names.CONSTANTS[prelude]
        return Constant(value, LiteralT(value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Invert):
        inner = fold(module, node.operand)
        value = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}[
            type(node.op)
        ](inner.value)
        return _typed(node, value, inner.type)
    if isinstance(node, ast.BinOp) and type(node.op) in _FOLD_BINARY:
        left, right = fold(module, node.left), fold(module, node.right)
        if isinstance(node.op, ast.FloorDiv | ast.Mod) and right.value == 0:
            raise SourceError(node, "division by zero in a constant expression")
        if isinstance(node.op, ast.LShift | ast.RShift) and right.value < 0:
            raise SourceError(node.right, "negative shift count in a constant expression")
        if isinstance(node.op, ast.Pow) and right.value < 0:
            raise SourceError(node.right, "negative exponent: the result would be a float")
        if isinstance(node.op, ast.LShift | ast.Pow) and right.value > 4096:
            raise SourceError(node.right, "constant too large")
        result_type = left.type if not isinstance(left.type, LiteralT) else right.type
        both_typed = not isinstance(left.type, LiteralT) and not isinstance(right.type, LiteralT)
        if both_typed and left.type != right.type:
            raise SourceError(node, f"cannot combine constants of types {left.type} and "
                              f"{right.type}")
        return _typed(node, _FOLD_BINARY[type(node.op)](left.value, right.value), result_type)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        raise SourceError(node, "'/' makes floats, which pykex does not have",
                          "use '//' for integer (floor) division")
    if (
        isinstance(node, ast.Call)
        and len(node.args) == 1
        and not node.keywords
        and (conv := module.prelude_name(node.func)) in names.CONVERSIONS
    ):
        target = names.CONVERSIONS[conv]
        inner = fold(module, node.args[0])
        if isinstance(target, IntT):
            return Constant(target.value.scalar.normalize(inner.value), target.value)
        return Constant(int(inner.value != 0), BOOL_T)
    raise SourceError(node, "not a constant expression",
                      "module-level values must be computed from literals and other constants")


def _fold_byte_string(module: Module, node: ast.Call | ast.Subscript) -> Constant | None:
    """``len(NAME)`` (an untyped constant) or ``NAME[i]`` (a u8) of a byte-string
    constant ``NAME``; None when ``node`` is neither."""
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id == "len"
                and len(node.args) == 1 and not node.keywords):
            return None
        data = _byte_string(module, node.args[0])
        return None if data is None else Constant(len(data), LiteralT(len(data)))
    data = _byte_string(module, node.value)
    if data is None:
        return None
    index = fold_int(module, node.slice)
    if not -len(data) <= index < len(data):
        raise SourceError(node.slice, f"index {index} is out of range for a byte string of "
                          f"{len(data)} bytes")
    return Constant(data[index], U8_T)


def _fold_tuple(module: Module, node: ast.Call | ast.Subscript) -> Constant | None:
    """``len(NAME)`` or ``NAME[i]`` (i constant) of a tuple constant ``NAME``; None
    when ``node`` is neither."""
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id == "len"
                and len(node.args) == 1 and not node.keywords):
            return None
        table = _tuple(module, node.args[0])
        return None if table is None else Constant(len(table.values),
                                                   LiteralT(len(table.values)))
    table = _tuple(module, node.value)
    if table is None:
        return None
    return tuple_item(table, fold_int(module, node.slice), node.slice)


def _tuple(module: Module, node: ast.expr) -> TupleT | None:
    return module.tuples.get(node.id) if isinstance(node, ast.Name) else None


def tuple_item(table: TupleT, index: int, node: ast.AST) -> Constant:
    """Item ``index`` of a tuple constant (negative counts from the end, as in Python)."""
    count = len(table.values)
    if not -count <= index < count:
        raise SourceError(node, f"index {index} is out of range for tuple {table.name} of "
                          f"{count} items")
    value = table.values[index]
    return Constant(value, table.element or LiteralT(value))


def ord_constant(node: ast.Call) -> int:
    """``ord("A")`` (or ``ord(b"A")``): the code of a one-character literal."""
    if len(node.args) != 1 or node.keywords:
        raise SourceError(node, "expected ord(c) with one character")
    arg = node.args[0]
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str | bytes)
            and len(arg.value) == 1):
        raise SourceError(arg, "ord() takes a one-character string or bytes literal",
                          'e.g. ord("A") == 65')
    return arg.value[0] if isinstance(arg.value, bytes) else ord(arg.value)


def _tuple_constant(module: Module, name: str, node: ast.Tuple) -> TupleT:
    """A module-level tuple of integer constants: its items, and their common type
    when some are typed (``u16(80)``); plain integers keep no type."""
    if not node.elts:
        raise SourceError(node, "a tuple constant needs at least one item")
    items = []
    for element in node.elts:
        if isinstance(element, ast.Starred):
            raise SourceError(element, "unpacking with * is not supported")
        items.append((element, fold(module, element)))
    typed = {c.type for _, c in items if not isinstance(c.type, LiteralT)}
    if any(isinstance(t, BoolT) for t in typed):
        raise SourceError(node, "tuple constants hold integers only")
    if len(typed) > 1:
        shown = " and ".join(sorted(map(str, typed)))
        raise SourceError(node, f"tuple {name} mixes items of types {shown}",
                          "give every item one type, or none")
    element = next(iter(typed), None)
    for item, constant in items:
        if isinstance(element, IntT) and not element.fits(constant.value):
            raise SourceError(item, f"{constant.value} does not fit in {element}, the type "
                              f"of the other items of {name}")
        if not -(1 << 63) <= constant.value < 1 << 64:
            raise SourceError(item, f"{constant.value} does not fit in 64 bits")
    values = tuple(c.value for _, c in items)
    if min(values) < 0 and max(values) >= 1 << 63:
        raise SourceError(node, f"the items of {name} do not fit one 64-bit type",
                          "keep them all within i64 or all within u64")
    return TupleT(name, values, element)


def _byte_string(module: Module, node: ast.expr) -> bytes | None:
    """The bytes ``node`` names: a byte-string literal or constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
        return node.value
    if isinstance(node, ast.Name):
        return module.byte_strings.get(node.id)
    return None


def _typed(node: ast.AST, value: int, ty: Type) -> Constant:
    if isinstance(ty, IntT):
        return Constant(ty.scalar.normalize(value), ty)
    if isinstance(ty, BoolT):
        raise SourceError(node, "arithmetic on bool constants", "convert with u8(flag) first")
    return Constant(value, LiteralT(value))


def fold_int(module: Module, node: ast.expr) -> int:
    return fold(module, node).value


# -- types from annotations ------------------------------------------------------------


def resolve_type(module: Module, node: ast.expr | None, *, allow_context: bool = False,
                 allow_none: bool = False) -> Type:
    """The type an annotation names."""
    if node is None:
        raise SourceError(None, "missing type annotation")
    prelude = module.prelude_name(node)
    if prelude in names.SCALARS:
        return names.SCALARS[prelude]
    if prelude == "SpinLock":
        raise SourceError(node, "a SpinLock exists only as a field of a Struct kept in a map",
                          "declare `lock: SpinLock` in a Struct and store it in a HashMap "
                          "or ArrayMap")
    if prelude in names.CONTEXTS:
        if not allow_context:
            raise SourceError(node, f"{prelude} can only be the parameter of a program")
        return ContextT(names.CONTEXTS[prelude])
    if isinstance(node, ast.Name):
        if node.id == "bool":
            return BOOL_T
        if node.id in module.structs:
            return module.structs[node.id]
        if node.id == "int":
            raise SourceError(node, "int has no fixed width",
                              "use u8, u16, u32, u64, i8, i16, i32 or i64")
        if node.id in ("float", "str", "bytes", "list", "dict"):
            raise SourceError(node, f"{node.id} values are not supported in extensions")
    if isinstance(node, ast.Constant) and node.value is None and allow_none:
        return NoneT()
    if isinstance(node, ast.Subscript):
        base = module.prelude_name(node.value)
        if base == "Array":
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if len(items) != 2:
                raise SourceError(node, "Array needs an element type and a length",
                                  "write Array[u8, 16]")
            element = resolve_type(module, items[0])
            length = fold_int(module, items[1])
            if length < 1:
                raise SourceError(items[1], f"array length must be positive, got {length}")
            return ArrayT(element, length)
        if base == "Bytes":
            length = fold_int(module, node.slice)
            if length < 1:
                raise SourceError(node.slice, f"Bytes length must be positive, got {length}")
            return ArrayT(U8_T, length, text=True)
        if base == "Optional" or (isinstance(node.value, ast.Name) and node.value.id == "Optional"):
            raise SourceError(node, "optional values exist only as map lookups",
                              "use m.get(k) and test it with `is not None`")
    name = ast.unparse(node)
    hint = f"import it: from pykex import {name}" if name in _PRELUDE_EXPORTS else None
    raise SourceError(node, f"'{name}' is not a type pykex knows", hint)


# -- the declarations ---------------------------------------------------------------------


def analyse(module: Module, tracepoints: TracepointSource | None) -> None:
    """Fill ``module``'s tables from its top-level statements."""
    sections: dict[str, list[GlobalVar]] = {".bss": [], ".data": []}
    userspace = UserSpace.of(module.tree)
    for statement in module.tree.body:
        try:
            if not userspace.skip(module, statement):
                _declaration(module, statement, sections, tracepoints)
        except SourceError as error:
            module.reporter.record(error if error.node else _at(error, statement))


USERSPACE_HOOKS = ("options", "main")
"""Functions of a tool module that run in CPython (``pykex run`` calls them)."""


@dataclass
class UserSpace:
    """The user-space part of a tool module, which the compiler leaves to CPython.

    It is the undecorated top-level functions named ``main`` and ``options`` that
    kernel code never calls, the functions only they use and an ``if __name__ ==
    "__main__":`` block; in a module that has any of these, also the imports of
    other modules than pykex and the module-level values (``NAME = ...``, maps
    aside) that kernel code never mentions. Kernel code that uses a user-space
    name is told so where it does.
    """

    functions: set[str]
    statements: list[ast.stmt]

    @classmethod
    def of(cls, tree: ast.Module) -> UserSpace:
        defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        uses = {name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                & defined.keys() for name, node in defined.items()}

        def reach(roots: set[str]) -> set[str]:
            seen: set[str] = set()
            todo = list(roots)
            while todo:
                name = todo.pop()
                if name not in seen:
                    seen.add(name)
                    todo.extend(uses[name])
            return seen

        hooks = {name for name in USERSPACE_HOOKS
                 if name in defined and not defined[name].decorator_list}
        from_hooks = reach(hooks)
        kernel_roots = (defined.keys() - from_hooks) | {
            name for name, node in defined.items() if node.decorator_list}
        functions = from_hooks - reach(kernel_roots - hooks)
        statements = [node for node in tree.body if _is_main_block(node) or (
            isinstance(node, ast.FunctionDef) and node.name in functions)]
        if not statements:
            return cls(functions, [])
        statements += [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
                       and _foreign_modules(node)]
        # Values start as user space and become kernel values when kernel code
        # (or another kernel value) mentions them, until nothing changes.
        values = [node for node in tree.body if _value_name(node) is not None]
        while True:
            kernel = [node for node in tree.body if node not in statements and node not in values]
            mentioned = {n.id for node in kernel for n in ast.walk(node)
                         if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            kept = [node for node in values if _value_name(node) not in mentioned]
            if kept == values:
                return cls(functions, statements + values)
            values = kept

    def skip(self, module: Module, node: ast.stmt) -> bool:
        """Whether ``node`` belongs to the user-space part; records what it defines."""
        if node not in self.statements:
            return False
        if isinstance(node, ast.FunctionDef):
            module.userspace[node.name] = f"the user-space function {node.name}()"
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                module.userspace[name] = (f"imported from {_foreign_modules(node)[0]} for the "
                                          "user-space part")
        elif (name := _value_name(node)) is not None:
            module.userspace[name] = f"the user-space value {name}"
        return True


def _value_name(node: ast.stmt) -> str | None:
    """The name ``NAME = value`` binds, unless it declares a map (or the license)."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name) and node.targets[0].id != "LICENSE"):
        return None
    value = node.value
    if isinstance(value, ast.Call):
        func = value.func.value if isinstance(value.func, ast.Subscript) else value.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in names.MAP_KINDS:
            return None
    return node.targets[0].id


def _is_main_block(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":``"""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def _foreign_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules other than pykex's that ``node`` imports from."""
    if isinstance(node, ast.ImportFrom):
        if node.level or node.module not in (*names.PRELUDE_MODULES, *LIBRARY_MODULES,
                                             "__future__"):
            return [node.module or "."]
        return []
    foreign = [a.name for a in node.names if a.name not in names.PRELUDE_MODULES]
    # `import pykex, os` is reported as it is: one statement, one part.
    return foreign if len(foreign) == len(node.names) else []


def _at(error: SourceError, node: ast.AST) -> SourceError:
    return SourceError(node, error.message, error.hint)


def _declaration(module: Module, node: ast.stmt, sections: dict[str, list[GlobalVar]],
                 tracepoints: TracepointSource | None) -> None:
    if isinstance(node, ast.ImportFrom):
        _import_from(module, node)
    elif isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name not in names.PRELUDE_MODULES:
                raise SourceError(node, f"cannot import {alias.name}: an extension may import "
                                  "only from pykex", IMPORT_HINT)
            module.pykex_aliases.add(alias.asname or alias.name.split(".")[0])
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(
        node.value.value, str
    ):
        return  # docstring
    elif isinstance(node, ast.ClassDef):
        _struct(module, node)
    elif isinstance(node, ast.FunctionDef):
        try:
            _function(module, node, tracepoints)
        except SourceError:
            if not module.is_user_name(node.name):
                module.reported.add(node.name)
            raise
    elif isinstance(node, ast.AsyncFunctionDef):
        raise SourceError(node, "async functions are not supported in extensions")
    elif isinstance(node, ast.Assign):
        _assign(module, node)
    elif isinstance(node, ast.AnnAssign):
        _global(module, node, sections)
    else:
        raise SourceError(node, f"{_describe(node)} is not allowed at module level",
                          "a module holds imports, constants, Struct classes, maps, typed "
                          "globals and functions")


def _describe(node: ast.AST) -> str:
    return {
        ast.If: "an if statement",
        ast.For: "a for loop",
        ast.While: "a while loop",
        ast.Try: "try/except",
        ast.With: "a with statement",
        ast.Expr: "an expression statement",
        ast.AugAssign: "augmented assignment",
        ast.Global: "global",
        ast.Delete: "del",
    }.get(type(node), type(node).__name__)


def _import_from(module: Module, node: ast.ImportFrom) -> None:
    if node.module == "__future__":
        return
    if node.module in LIBRARY_MODULES and not node.level:
        _import_library(module, node)
        return
    if node.module not in names.PRELUDE_MODULES or node.level:
        raise SourceError(node, f"cannot import from {node.module or '.'}: an extension may "
                          "import only from pykex", IMPORT_HINT)
    for alias in node.names:
        if alias.name == "*":
            raise SourceError(node, "`from pykex import *` hides where names come from",
                              "import the names you use")
        if alias.name not in _PRELUDE_EXPORTS:
            # The other names stay usable: only this one is reported.
            close = difflib.get_close_matches(alias.name, sorted(_PRELUDE_EXPORTS), n=1)
            module.reporter.error(node, f"pykex has no name {alias.name!r}",
                                  f"did you mean {close[0]!r}?" if close else None)
            module.reported.add(alias.asname or alias.name)
            continue
        module.prelude[alias.asname or alias.name] = alias.name


IMPORT_HINT = ("write `from pykex import ...`; only the user-space part of a tool (its main() "
               "and options() functions) may use other modules")


# Libraries of declarations written in pykex itself (protocol headers and their
# constants): their Structs and integer constants can be imported by extensions.
LIBRARY_MODULES = ("pykex.net",)


def _import_library(module: Module, node: ast.ImportFrom) -> None:
    library = importlib.import_module(str(node.module))
    for alias in node.names:
        if alias.name == "*":
            raise SourceError(node, f"`from {node.module} import *` hides where names come from",
                              "import the names you use")
        name = alias.asname or alias.name
        _check_new_name(module, node, name)
        value = getattr(library, alias.name, None)
        if isinstance(value, type) and issubclass(value, layout.Struct):
            module.structs[name] = StructT(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            module.constants[name] = Constant(value, LiteralT(value))
        else:
            raise SourceError(
                node,
                f"{node.module} has no header or constant named {alias.name!r}",
                "its functions run in user space only; an extension imports its Structs "
                "and integer constants",
            )


def _check_new_name(module: Module, node: ast.AST, name: str) -> None:
    if module.is_user_name(name) or name in module.prelude:
        raise SourceError(node, f"{name!r} is already defined in this module")


def _struct(module: Module, node: ast.ClassDef) -> None:
    _check_new_name(module, node, node.name)
    if node.decorator_list:
        raise SourceError(node.decorator_list[0], "Struct classes take no decorators")
    base_fields: list[tuple[str, layout.LayoutType]] = []
    if len(node.bases) != 1:
        raise SourceError(node, "classes are supported only as Struct declarations",
                          f"write `class {node.name}(Struct):` with annotated fields")
    base = node.bases[0]
    if module.prelude_name(base) != "Struct":
        if isinstance(base, ast.Name) and base.id in module.structs:
            base_fields = [(f.name, f.type) for f in module.structs[base.id].layout.fields]
        else:
            raise SourceError(node, "classes are supported only as Struct declarations",
                              f"write `class {node.name}(Struct):` with annotated fields")
    packed = False
    for keyword in node.keywords:
        if keyword.arg != "packed":
            raise SourceError(keyword, f"unknown class option {keyword.arg!r}",
                              "Struct classes accept only packed=True")
        packed = bool(fold(module, keyword.value).value)
    fields = list(base_fields)
    for item in node.body:
        if isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant):
            continue
        if isinstance(item, ast.Pass):
            continue
        if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
            raise SourceError(item, "a Struct class holds only field annotations (`name: type`)",
                              "methods and class attributes are not supported")
        if item.value is not None:
            raise SourceError(item.value, "Struct fields cannot have defaults",
                              "missing fields are zero when a Struct is built")
        if module.prelude_name(item.annotation) == "SpinLock":
            if any(lt is SpinLock for _, lt in fields):
                raise SourceError(item.annotation, "a Struct holds at most one SpinLock",
                                  "the kernel allows one lock per map value")
            fields.append((item.target.id, SpinLock))
            continue
        ty = resolve_type(module, item.annotation)
        if isinstance(ty, StructT | ArrayT) and holds_lock(ty):
            raise SourceError(item.annotation, "a SpinLock must be a direct field of the Struct "
                              "stored in the map, not nested in another Struct or Array")
        if not ty.is_data:
            raise SourceError(item.annotation, f"{ty} cannot be a Struct field")
        if item.target.id.startswith("_"):
            raise SourceError(item.target, "field names starting with '_' are reserved")
        fields.append((item.target.id, ty.layout))  # type: ignore[attr-defined]
    try:
        struct = layout.make_struct(node.name, fields, packed=packed)
    except TypeError as failure:
        raise SourceError(node, str(failure)) from None
    module.structs[node.name] = StructT(struct)


def _assign(module: Module, node: ast.Assign) -> None:
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        raise SourceError(node, "module-level assignments bind one name")
    name = node.targets[0].id
    if name == "LICENSE" and isinstance(node.value, ast.Constant) and isinstance(
        node.value.value, str
    ):
        module.license = node.value.value
        return
    _check_new_name(module, node.targets[0], name)
    value = node.value
    if isinstance(value, ast.Call) and _map_class(module, value.func) is not None:
        _map(module, name, value)
        return
    if isinstance(value, ast.Lambda):
        raise SourceError(value, "lambdas are not supported", "define a function with def")
    if isinstance(value, ast.Constant) and isinstance(value.value, bytes):
        module.byte_strings[name] = value.value
        return
    if isinstance(value, ast.Tuple):
        module.tuples[name] = _tuple_constant(module, name, value)
        return
    module.constants[name] = fold(module, value)


def _map_class(module: Module, func: ast.expr) -> str | None:
    base = func.value if isinstance(func, ast.Subscript) else func
    prelude = module.prelude_name(base)
    return prelude if prelude in names.MAP_KINDS else None


# map class -> the one option it takes (None: no options)
_MAP_OPTION = {"RingBuffer": "size", "PerfEventArray": None}
STACK_DEPTH = 127  # PERF_MAX_STACK_DEPTH: frames a stack trace map value holds
# Kinds whose values may hold a SpinLock (the kernel's rule).
_LOCK_MAP_KINDS = ("HashMap", "ArrayMap")


def _map(module: Module, name: str, call: ast.Call) -> None:
    cls = _map_class(module, call.func)
    assert cls is not None
    kind, arity = names.MAP_KINDS[cls]
    params: list[ast.expr] = []
    if isinstance(call.func, ast.Subscript):
        params = call.func.slice.elts if isinstance(call.func.slice, ast.Tuple) else [
            call.func.slice]
    if len(params) != arity:
        shape = {2: f"{cls}[K, V]", 1: f"{cls}[V]", 0: cls}[arity]
        raise SourceError(call, f"{cls} takes {arity} type parameter(s)", f"write {shape}(...)")
    options = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise SourceError(keyword, "map options are named: max_entries=N")
        options[keyword.arg] = fold_int(module, keyword.value)
    wanted = _MAP_OPTION.get(cls, "max_entries")
    if call.args:
        raise SourceError(call.args[0], "map options are named",
                          f"write {wanted}=N" if wanted else f"write {cls}()")
    unknown = set(options) - {wanted}
    if unknown:
        raise SourceError(call, f"{cls} has no option {sorted(unknown)[0]!r}",
                          f"{cls} takes {wanted}=N" if wanted else f"write {cls}()")
    if wanted is not None and wanted not in options:
        raise SourceError(call, f"{cls} needs {wanted}=N")
    count = options.get(wanted, 0) if wanted else 0
    key: Type | None = None
    value: Type | None = None
    flags = 0
    if kind == "RINGBUF":
        if count < PAGE_SIZE or count & (count - 1):
            raise SourceError(call, f"ring buffer size must be a power of two of at least "
                              f"{PAGE_SIZE}, got {count}")
        key_size = value_size = 0
    elif kind == "PERF_EVENT_ARRAY":
        # One entry per possible CPU, filled in when the map is created.
        key, value = U32_T, U32_T
        key_size = value_size = 4
    else:
        if count < 1:
            raise SourceError(call, f"max_entries must be at least 1, got {count}")
        if kind == "STACK_TRACE":
            key, value = U32_T, ArrayT(U64_T, STACK_DEPTH)
        elif kind in ("DEVMAP", "PROG_ARRAY"):
            key, value = U32_T, U32_T
        elif arity == 2:
            key = resolve_type(module, params[0])
            value = resolve_type(module, params[1])
        else:
            key, value = U32_T, resolve_type(module, params[0])
        for part, what in ((key, "key"), (value, "value")):
            if not part.is_data:
                raise SourceError(call, f"a map {what} must be an integer, bool, Struct or "
                                  f"Array, not {part}")
        if holds_lock(key):
            raise SourceError(params[0], "a map key cannot hold a SpinLock")
        if holds_lock(value) and cls not in _LOCK_MAP_KINDS:
            raise SourceError(params[-1], f"{cls} values cannot hold a SpinLock",
                              "the kernel allows locks in HashMap and ArrayMap values only")
        if kind == "LPM_TRIE":
            flags = BPF_F_NO_PREALLOC
            first = key.field("prefixlen") if isinstance(key, StructT) else None
            if first is None or first[1] != 0 or first[0] != U32_T:
                raise SourceError(params[0], "an LpmTrie key must be a Struct whose first "
                                  "field is prefixlen: u32")
        key_size, value_size = key.size, value.size  # type: ignore[attr-defined]
    decl = MapDecl(
        name=name,
        kind=kind,
        key_size=key_size,
        value_size=value_size,
        max_entries=count,
        flags=flags,
        key_type=key.layout if key is not None else None,  # type: ignore[attr-defined]
        value_type=value.layout if value is not None else None,  # type: ignore[attr-defined]
        loc=module.loc(call),
    )
    module.maps[name] = MapInfo(MapT(name, cls, key, value), decl)


def _global(module: Module, node: ast.AnnAssign, sections: dict[str, list[GlobalVar]]) -> None:
    if not isinstance(node.target, ast.Name):
        raise SourceError(node, "module-level annotations declare one name")
    name = node.target.id
    _check_new_name(module, node.target, name)
    ty = resolve_type(module, node.annotation)
    if not ty.is_data:
        raise SourceError(node.annotation, f"a global cannot hold {ty}")
    if holds_lock(ty):
        raise SourceError(node.annotation, "a SpinLock lives in map values only",
                          "keep the Struct in an ArrayMap with max_entries=1")
    if node.value is None:
        raise SourceError(node, f"global {name} needs an initial value", f"write {name}: "
                          f"{ast.unparse(node.annotation)} = 0")
    initial = _initial_bytes(module, ty, node.value)
    section = ".data" if any(initial) else ".bss"
    placed = sections[section]
    offset = 0
    if placed:
        last = placed[-1]
        offset = last.offset + len(last.initial)
    align = ty.layout.align  # type: ignore[attr-defined]
    offset = (offset + align - 1) // align * align
    var = GlobalVar(name, ty, section, offset, initial, node)
    placed.append(var)
    module.globals[name] = var


def _initial_bytes(module: Module, ty: Type, value: ast.expr) -> bytes:
    if isinstance(ty, IntT | BoolT):
        constant = fold(module, value)
        number = constant.value
        if isinstance(ty, IntT) and not ty.value.fits(number):
            raise SourceError(value, f"{number} does not fit in {ty}")
        return ty.layout.encode(number)
    if isinstance(ty, StructT) and isinstance(value, ast.Call) and isinstance(
        value.func, ast.Name
    ) and value.func.id == ty.name:
        fields = {}
        names_in_order = ty.field_names()
        for i, arg in enumerate(value.args):
            if i >= len(names_in_order):
                count = len(names_in_order)
                raise SourceError(arg, f"{ty.name} has {count} field{'s' if count != 1 else ''}, "
                                  f"given {len(value.args)} values")
            fields[names_in_order[i]] = fold(module, arg).value
        for keyword in value.keywords:
            if keyword.arg is None or ty.field(keyword.arg) is None:
                raise SourceError(keyword, f"{ty.name} has no field {keyword.arg!r}")
            fields[keyword.arg] = fold(module, keyword.value).value
        try:
            return ty.layout.encode(fields)
        except (TypeError, ValueError, OverflowError) as failure:
            raise SourceError(value, str(failure)) from None
    raise SourceError(value, f"the initial value of a {ty} global must be a constant",
                      f"write {ty}() for zero" if isinstance(ty, StructT) else None)


def section_maps(module: Module) -> list[MapDecl]:
    """The ``.bss``/``.data`` maps holding the module's globals."""
    out = []
    for section in (".bss", ".data"):
        members = [g for g in module.globals.values() if g.section == section]
        if not members:
            continue
        size = max(g.offset + len(g.initial) for g in members)
        size = (size + 7) // 8 * 8
        data = bytearray(size)
        for g in members:
            data[g.offset : g.offset + len(g.initial)] = g.initial
        out.append(MapDecl(section, "ARRAY", 4, size, 1, initial=bytes(data)
                           if section == ".data" else None,
                           key_type=layout.u32, value_type=layout.Bytes[size]))
    return out


# -- functions and programs ------------------------------------------------------------------


def _function(module: Module, node: ast.FunctionDef, tracepoints: TracepointSource | None
              ) -> None:
    _check_new_name(module, node, node.name)
    args = node.args
    if args.vararg or args.kwarg:
        raise SourceError(node, "*args and **kwargs are not supported")
    if args.defaults or args.kw_defaults:
        raise SourceError(node, "default parameter values are not supported")
    if args.kwonlyargs or args.posonlyargs:
        raise SourceError(node, "keyword-only and positional-only parameters are not supported")
    program = None
    if len(node.decorator_list) > 1:
        raise SourceError(node.decorator_list[1], "a function takes at most one decorator")
    if node.decorator_list:
        program = _program(module, node, node.decorator_list[0], tracepoints)
    params = []
    for arg in args.args:
        if arg.annotation is None:
            raise SourceError(arg, f"parameter {arg.arg!r} needs a type annotation")
        ty = resolve_type(module, arg.annotation, allow_context=True)
        params.append((arg.arg, ty, arg))
    if program is not None:
        if len(params) != 1 or params[0][1] != program.context:
            raise SourceError(node, f"{program.kind} programs take one parameter "
                              f"`ctx: {program.context}`")
        if node.returns is None or not _is_int_annotation(module, node.returns):
            raise SourceError(node, f"{program.kind} programs return an int",
                              f"write `def {node.name}(ctx: {program.context}) -> int:`")
        returns: Type = IntT(names.DEFAULT_INT.scalar)
    elif node.returns is None:
        returns = NoneT()
    else:
        returns = resolve_type(module, node.returns, allow_none=True)
    module.functions[node.name] = FunctionDecl(node.name, node, params, returns, program)


def _is_int_annotation(module: Module, node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "int") or module.prelude_name(
        node) in names.SCALARS


def _program(module: Module, node: ast.FunctionDef, decorator: ast.expr,
             tracepoints: TracepointSource | None) -> ProgramSpec:
    call = decorator if isinstance(decorator, ast.Call) else None
    decorator_name = module.prelude_name(call.func if call else decorator) or ""
    kind = names.PROGRAM_DECORATORS.get(decorator_name)
    if kind is None:
        known = ", ".join(f"@{name}" for name in names.PROGRAM_DECORATORS)
        raise SourceError(decorator, "unknown decorator", f"programs are marked with {known}")
    positional = list(call.args) if call else []
    keywords = {k.arg: k.value for k in call.keywords} if call else {}
    attach: dict[str, object] = {}
    on_error = names.DEFAULT_ON_ERROR[kind]
    if "on_error" in keywords:
        on_error = fold_int(module, keywords.pop("on_error"))
    if "crash_stop" in keywords:
        attach["crash_stop"] = bool(fold(module, keywords.pop("crash_stop")).value)
    context = ContextT(names.CONTEXT_OF_KIND.get(kind, kind))
    tracepoint = None
    if kind in ("tc", "cgroup_skb"):
        direction = keywords.pop("direction", positional.pop(0) if positional else None)
        text = "ingress"
        if direction is not None:
            if not isinstance(direction, ast.Constant) or direction.value not in (
                "ingress", "egress"
            ):
                raise SourceError(direction, f'{kind} direction must be "ingress" or "egress"')
            text = direction.value
        attach["direction"] = text
    elif kind in ("tracepoint", "raw_tracepoint"):
        target = positional.pop(0) if positional else keywords.pop("name", None)
        if not isinstance(target, ast.Constant) or not isinstance(target.value, str):
            shape = '"group/name"' if kind == "tracepoint" else '"name"'
            raise SourceError(decorator, f"@{kind} needs the tracepoint's name: @{kind}({shape})")
        attach["tracepoint"] = target.value
        if kind == "tracepoint":
            group, _, event = target.value.partition("/")
            if not group or not event:
                raise SourceError(target, 'tracepoint names are "group/name"',
                                  'e.g. @tracepoint("syscalls/sys_enter_openat")')
            reader = tracepoints or tracepoint_format
            try:
                tracepoint = reader(group, event)
            except BTFError as failure:
                raise SourceError(target, f"cannot read tracepoint {target.value}: {failure}",
                                  "list them in /sys/kernel/tracing/events") from None
    elif kind == "kprobe":
        parts = ("binary", "symbol") if decorator_name.startswith("u") else ("function",)
        for part in parts:
            value = positional.pop(0) if positional else keywords.pop(part, None)
            if not isinstance(value, ast.Constant) or not isinstance(value.value, str):
                shape = ", ".join(f'"{p}"' for p in parts)
                raise SourceError(decorator, f"@{decorator_name} needs the probed "
                                  f"{' and '.join(parts)}: @{decorator_name}({shape})")
            attach[part] = value.value
        if decorator_name.endswith("retprobe"):
            attach["retprobe"] = True
    if positional:
        raise SourceError(positional[0], f"@{decorator_name} takes only named options here")
    if "crash_stop" in attach and kind != "xdp":
        # Every kind could have it; XDP is where Rex offers it and where a
        # misbehaving extension costs most.
        raise SourceError(decorator, f"@{decorator_name} has no option 'crash_stop'",
                          "crash_stop is available on @xdp programs")
    if keywords:
        raise SourceError(decorator, f"@{decorator_name} has no option "
                          f"{next(iter(keywords))!r}")
    return ProgramSpec(kind, on_error, attach, context, tracepoint)
