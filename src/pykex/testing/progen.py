"""Random well-typed pykex extensions, for differential testing of the compiler.

:func:`generate` writes the source text of an extension from a stream of
choices: several functions that call one another, one XDP program, loops
(``while`` with a counter, ``for ... in range``), branches, arithmetic at
every width and signedness (division and modulo that may raise
ZeroDivisionError, shifts by any amount), map operations on a ``HashMap``,
an ``ArrayMap`` of a ``Struct`` and a ``PerCpuArray``, packet reads and
writes that may raise IndexError, struct locals, asserts and raises.

Every program terminates: loops run at most a dozen times. The programs are
meant to be accepted by the front end; one it rejects is a bug of this
generator or of the front end.

The choices come from a :class:`Chooser`: :func:`programs` is the hypothesis
strategy (hypothesis draws the choices and shrinks failures), and
:func:`generate_from_seed` uses ``random.Random(seed)`` for long soak runs
that report seeds to replay.

:func:`differential` is the oracle: it checks a module, compiles it at every
optimisation level, loads it into the kernel and runs it there and in the
IR interpreter (host mode) on the same packets, and lists every difference
in verdicts, output packets, raised exceptions (kind, message, line chain)
and map contents. The rule it enforces: a module ``check`` accepts loads.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pykex.bpf.codegen import VerifierRejectionError
from pykex.compiler import Compilation
from pykex.ir.interp import PER_CPU_KINDS
from pykex.kernel import syscall
from pykex.kernel.cpus import possible_cpu_count
from pykex.lang import check, compile_to_ir
from pykex.runtime import ExceptionReport, Extension, HostExtension, RunResult, load, load_host

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

T = TypeVar("T")

SCALARS = ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64")
BITS = {name: int(name[1:]) for name in SCALARS}
SIGNED = {name: name.startswith("i") for name in SCALARS}
ARITH_OPS = ("+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>")
COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")
RAISABLE = ("ValueError", "RuntimeError", "OverflowError", "LookupError")
ARRAY_ENTRIES = 4
HASH_ENTRIES = 16
MAX_LOOP_COUNT = 12  # iterations of one loop: keeps the interpreter fast


def type_range(ty: str) -> tuple[int, int]:
    bits = BITS[ty]
    if SIGNED[ty]:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def widens_to(have: str, want: str) -> bool:
    """Whether a value of type ``have`` is usable where ``want`` is expected
    (the front end widens within one signedness)."""
    return SIGNED[have] == SIGNED[want] and BITS[have] <= BITS[want]


class Chooser(Protocol):
    """Where the generator's decisions come from."""

    def integer(self, low: int, high: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...

    def chance(self, probability: float) -> bool: ...


class RandomChooser:
    """Choices from ``random.Random(seed)``: the same seed, the same program."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.random.randrange(len(options))]

    def chance(self, probability: float) -> bool:
        return self.random.random() < probability


class DrawChooser:
    """Choices drawn by hypothesis, so failures shrink to small programs."""

    def __init__(self, draw: Callable[[SearchStrategy[Any]], Any]) -> None:
        from hypothesis import strategies

        self.draw = draw
        self.integers = strategies.integers

    def integer(self, low: int, high: int) -> int:
        return int(self.draw(self.integers(low, high)))

    def choice(self, options: Sequence[T]) -> T:
        return options[self.draw(self.integers(0, len(options) - 1))]

    def chance(self, probability: float) -> bool:
        # Shrinks towards False: towards the simpler program.
        return bool(self.draw(self.integers(0, 999)) >= 1000 - int(probability * 1000))


@dataclass(frozen=True)
class Shape:
    """How big the generated extension is."""

    functions: int = 3  # helper functions besides the program
    statements: int = 4  # statements per block, at most
    depth: int = 2  # nesting of blocks and of expressions
    helper_calls: int = 2  # calls from one function to earlier ones, at most
    checks: bool = True  # asserts and raises (which, on constants, cut the rest short)


SMALL = Shape()
BIG = Shape(functions=45, statements=5, depth=2, helper_calls=1, checks=False)


@dataclass
class Expr:
    text: str
    type: str
    constant: int | None = None  # the value, when the text is an int literal


@dataclass
class Variable:
    type: str
    mutable: bool = True


@dataclass
class FunctionSig:
    name: str
    params: list[tuple[str, str]]  # (name, type); the context comes first when taken
    returns: str | None  # None: returns nothing
    takes_ctx: bool


@dataclass
class Scope:
    variables: dict[str, Variable] = field(default_factory=dict)
    has_ctx: bool = False
    loops: int = 0
    returns: str | None = None  # the function's return type ("" for a program)
    callable: list[FunctionSig] = field(default_factory=list)
    calls_left: int = 0
    refs: set[str] = field(default_factory=set)  # maps a checked reference points into


class Generator:
    """Writes one extension; see the module documentation."""

    def __init__(self, chooser: Chooser, shape: Shape = SMALL) -> None:
        self.c = chooser
        self.shape = shape
        self.lines: list[str] = []
        self.indent = 0
        self.names = 0
        self.key_type = self.c.choice(("u32", "u64", "u16", "i32"))
        self.hash_value = self.c.choice(SCALARS)
        self.pcpu_value = self.c.choice(SCALARS)
        self.fields = [(f"f{i}", self.c.choice(SCALARS)) for i in range(self.c.integer(1, 4))]
        self.functions: list[FunctionSig] = []
        self.scope = Scope()

    # -- output ---------------------------------------------------------------------

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.line(header)
        self.indent += 1
        mark = len(self.lines)
        try:
            yield
        finally:
            if len(self.lines) == mark:
                self.line("pass")
            self.indent -= 1

    def fresh(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    # -- the module -------------------------------------------------------------------

    def module(self) -> str:
        imports = ", ".join(SCALARS)
        self.lines += [
            "from pykex import xdp, XdpContext, XDP_PASS, XDP_DROP, XDP_TX",
            "from pykex import HashMap, ArrayMap, PerCpuArray, Struct, be16, be32",
            f"from pykex import {imports}",
            "",
            "",
            "class Rec(Struct):",
            *(f"    {name}: {ty}" for name, ty in self.fields),
            "",
            "",
            f"table = HashMap[{self.key_type}, {self.hash_value}]"
            f"(max_entries={HASH_ENTRIES})",
            f"records = ArrayMap[Rec](max_entries={ARRAY_ENTRIES})",
            f"percpu = PerCpuArray[{self.pcpu_value}](max_entries={ARRAY_ENTRIES})",
            "",
        ]
        for index in range(self.shape.functions):
            self.function(index)
        self.program()
        return "\n".join(self.lines) + "\n"

    def function(self, index: int) -> None:
        takes_ctx = self.c.chance(0.6)
        params = [(f"p{i}", self.c.choice(SCALARS)) for i in range(self.c.integer(0, 3))]
        returns = None if self.c.chance(0.15) else self.c.choice(SCALARS)
        sig = FunctionSig(f"fn{index}", params, returns, takes_ctx)
        shown = ([("ctx", "XdpContext")] if takes_ctx else []) + params
        args = ", ".join(f"{name}: {ty}" for name, ty in shown)
        self.lines += ["", ""]
        with self.block(f"def {sig.name}({args}) -> {returns or 'None'}:"):
            self.scope = Scope(
                {name: Variable(ty) for name, ty in params},
                has_ctx=takes_ctx,
                returns=returns,
                callable=self.callable_from(index),
                calls_left=self.shape.helper_calls,
            )
            self.body_of_function()
            if returns is not None:
                self.line(f"return {self.expr(returns, self.shape.depth).text}")
        self.functions.append(sig)

    def callable_from(self, index: int) -> list[FunctionSig]:
        # Big modules call leaves only, so inlining grows the program linearly.
        if self.shape is BIG:
            leaves = self.shape.functions // 4
            return [] if index < leaves else self.functions[:leaves]
        return list(self.functions)

    def program(self) -> None:
        verdict = self.c.choice(("XDP_PASS", "XDP_DROP", "XDP_TX", "0"))
        self.lines += ["", ""]
        self.line(f"@xdp(on_error={verdict})")
        with self.block("def prog(ctx: XdpContext) -> int:"):
            self.scope = Scope(
                has_ctx=True, returns="", callable=list(self.functions),
                calls_left=max(len(self.functions), 1) if self.shape is BIG
                else self.shape.helper_calls + 1,
            )
            if self.shape is BIG:
                for sig in self.functions:
                    self.call_statement(sig)
            self.body_of_function()
            self.line(f"return {self.verdict()}")

    def verdict(self) -> str:
        if self.c.chance(0.5):
            return self.c.choice(("XDP_PASS", "XDP_DROP", "XDP_TX"))
        value = self.expr(self.c.choice(SCALARS), self.shape.depth)
        low, high = type_range("i64")
        if value.constant is not None and not low <= value.constant <= high:
            return "XDP_PASS"  # a verdict literal must fit i64
        return value.text

    def body_of_function(self) -> None:
        for _ in range(self.c.integer(1, 3)):
            ty = self.c.choice(SCALARS)
            name = self.fresh("v")
            self.line(f"{name}: {ty} = {self.expr(ty, 1).text}")
            self.scope.variables[name] = Variable(ty)
        if self.c.chance(0.3):
            name = self.fresh("s")
            values = ", ".join(
                f"{f}={self.expr(ty, 1).text}" for f, ty in self.fields if self.c.chance(0.7)
            )
            self.line(f"{name} = Rec({values})")
            for f, ty in self.fields:
                self.scope.variables[f"{name}.{f}"] = Variable(ty)
        self.statements(self.shape.depth)

    # -- statements -------------------------------------------------------------------

    def statements(self, depth: int) -> None:
        for _ in range(self.c.integer(1, self.shape.statements)):
            self.statement(depth)

    def statement(self, depth: int) -> None:
        kinds: list[Callable[[int], None]] = [
            self.assign, self.assign, self.augassign, self.augassign, self.map_statement,
            self.map_statement,
        ]
        if self.shape.checks and self.c.chance(0.3):
            kinds.append(self.check)
        if depth > 0:
            kinds += [self.if_statement, self.if_statement, self.for_loop, self.while_loop,
                      self.get_statement]
        if self.scope.has_ctx:
            kinds.append(self.packet_write)
            if depth > 0:
                kinds.append(self.packet_scan)
        if self.scope.loops:
            kinds.append(self.loop_exit)
        if self.scope.calls_left and self.scope.callable:
            kinds.append(lambda _depth: self.call_statement(self.c.choice(self.scope.callable)))
        if self.scope.returns is not None and self.c.chance(0.05):
            kinds.append(self.early_return)
        self.c.choice(kinds)(depth)

    def mutable(self) -> list[str]:
        return [n for n, v in self.scope.variables.items() if v.mutable]

    def assign(self, depth: int) -> None:
        names = self.mutable()
        if not names:
            return
        name = self.c.choice(names)
        self.line(f"{name} = {self.expr(self.scope.variables[name].type, depth).text}")

    def augassign(self, depth: int) -> None:
        names = self.mutable()
        if not names:
            return
        name = self.c.choice(names)
        ty = self.scope.variables[name].type
        op = self.c.choice(ARITH_OPS)
        value = self.shift_amount(depth) if op in ("<<", ">>") else self.operand(ty, depth, op)
        self.line(f"{name} {op}= {value.text}")

    def if_statement(self, depth: int) -> None:
        with self.block(f"if {self.condition(depth)}:"):
            self.statements(depth - 1)
        if self.c.chance(0.3):
            with self.block(f"elif {self.condition(depth)}:"):
                self.statements(depth - 1)
        if self.c.chance(0.5):
            with self.block("else:"):
                self.statements(depth - 1)

    def for_loop(self, depth: int) -> None:
        if self.scope.loops >= 2:
            return self.if_statement(depth)
        name = self.fresh("k")
        form = self.c.integer(0, 3)
        if form == 0:
            header, ty = f"range({self.c.integer(0, MAX_LOOP_COUNT)})", "i64"
        elif form == 1:
            low = self.c.integer(-4, 4)
            stop, step = low + self.c.integer(0, 10), self.c.integer(1, 3)
            header, ty = f"range({low}, {stop}, {step})", "i64"
        elif form == 2:
            high = self.c.integer(-3, 3)
            start, step = high + self.c.integer(0, 9), self.c.integer(1, 2)
            header, ty = f"range({start}, {high}, -{step})", "i64"
        else:
            bound = self.nonconstant(self.c.choice(("u8", "u16", "u32", "u64")), 0)
            header, ty = f"range({bound.text} & {MAX_LOOP_COUNT - 4})", bound.type
            return self.loop(f"for {name} in {header}:", name, ty, depth)
        # A counter over constant bounds takes the type each use needs, as a
        # literal does (docs/language.md); the generator tracks types, so it
        # works on an i64 copy of it.
        counter = self.fresh("r")
        with self.block(f"for {counter} in {header}:"):
            self.line(f"{name}: {ty} = {counter}")
            self.loop_body(name, ty, depth)

    def while_loop(self, depth: int) -> None:
        if self.scope.loops >= 2:
            return self.if_statement(depth)
        counter = self.fresh("w")
        self.line(f"{counter}: u32 = 0")
        limit = self.c.integer(0, MAX_LOOP_COUNT)
        test = f"{counter} < {limit}"
        if self.c.chance(0.3):
            test = f"{test} and {self.condition(0)}"
        with self.block(f"while {test}:"):
            self.line(f"{counter} += 1")
            self.loop_body(counter, "u32", depth)

    def packet_scan(self, depth: int) -> None:
        """A loop over the first bytes of the packet, folding them into a local."""
        if self.scope.loops >= 2:
            return self.if_statement(depth)
        name = self.fresh("k")
        with self.block(f"for {name} in range(len(ctx.packet) & 31):"):
            targets = [n for n in self.mutable() if not SIGNED[self.scope.variables[n].type]]
            if targets:
                op = self.c.choice(("+", "^", "|"))
                self.line(f"{self.c.choice(targets)} {op}= ctx.packet[{name}]")
            self.loop_body(name, "u32", depth)

    def loop(self, header: str, name: str, ty: str, depth: int) -> None:
        with self.block(header):
            self.loop_body(name, ty, depth)

    def loop_body(self, name: str, ty: str, depth: int) -> None:
        self.scope.variables[name] = Variable(ty, mutable=False)
        self.scope.loops += 1
        try:
            self.statements(depth - 1)
        finally:
            self.scope.loops -= 1
            del self.scope.variables[name]

    def loop_exit(self, depth: int) -> None:
        with self.block(f"if {self.condition(0)}:"):
            self.line(self.c.choice(("break", "continue")))

    def early_return(self, depth: int) -> None:
        returns = self.scope.returns
        with self.block(f"if {self.condition(0)}:"):
            if returns == "":
                self.line(f"return {self.verdict()}")
            elif returns is None:
                self.line("return")
            else:
                self.line(f"return {self.expr(returns, 0).text}")

    def check(self, depth: int) -> None:
        form = self.c.integer(0, 2)
        if form == 0:
            self.line(f"assert {self.condition(0)}")
        elif form == 1:
            self.line(f'assert {self.condition(0)}, "invariant broken"')
        else:
            kind = self.c.choice(RAISABLE)
            shown = self.nonconstant(self.c.choice(SCALARS), 0).text
            with self.block(f"if {self.condition(0)}:"):
                self.line(f'raise {kind}("bad value", {shown})')

    def call_statement(self, sig: FunctionSig) -> None:
        if not self.scope.calls_left or (sig.takes_ctx and not self.scope.has_ctx):
            return
        call = self.call(sig, 0)
        if sig.returns is not None and self.c.chance(0.6):
            variables = self.scope.variables
            names = [n for n in self.mutable() if widens_to(sig.returns, variables[n].type)]
            if names:
                self.line(f"{self.c.choice(names)} = {call}")
                return
        self.line(call)

    # -- maps -------------------------------------------------------------------------

    def key(self, depth: int) -> str:
        if depth < 0 or self.c.chance(0.6):
            low, high = type_range(self.key_type)
            return str(self.c.integer(max(low, 0), min(high, 6)))
        return f"({self.nonconstant(self.key_type, depth).text} & 7)"

    def index(self, depth: int) -> str:
        if depth < 0 or self.c.chance(0.7):
            return str(self.c.integer(0, ARRAY_ENTRIES))  # ARRAY_ENTRIES raises IndexError
        return self.nonconstant(self.c.choice(("u8", "u16", "u32")), depth).text

    def map_statement(self, depth: int) -> None:
        form = self.c.integer(0, 5)
        if "table" in self.scope.refs and form in (0, 1):
            form = 2  # no stores to a map while a reference into it is alive
        if form == 0:
            self.line(f"table[{self.key(depth)}] = {self.expr(self.hash_value, depth).text}")
        elif form == 1:
            key = self.key(0)
            if self.c.chance(0.7):
                with self.block(f"if {key} in table:"):
                    self.line(f"del table[{key}]")
            else:
                self.line(f"del table[{key}]")
        elif form == 2:
            name, ty = self.c.choice(self.fields)
            self.line(f"records[{self.index(depth)}].{name} = {self.expr(ty, depth).text}")
        elif form == 3:
            name, ty = self.c.choice(self.fields)
            op = self.c.choice(("+", "-", "|", "^"))
            value = self.operand(ty, depth, op).text
            self.line(f"records[{self.index(depth)}].{name} {op}= {value}")
        elif form == 4:
            self.line(f"percpu[{self.index(depth)}] = {self.expr(self.pcpu_value, depth).text}")
        else:
            value = self.operand(self.pcpu_value, depth, "+").text
            self.line(f"percpu[{self.index(depth)}] += {value}")

    def get_statement(self, depth: int) -> None:
        name = self.fresh("r")
        with self.block(f"if ({name} := table.get({self.key(0)})) is not None:"):
            self.scope.variables[name] = Variable(self.hash_value, mutable=False)
            added = "table" not in self.scope.refs
            self.scope.refs.add("table")
            try:
                self.statements(depth - 1)
            finally:
                del self.scope.variables[name]
                if added:
                    self.scope.refs.discard("table")

    # -- packets ----------------------------------------------------------------------

    def offset(self, depth: int) -> str:
        if self.c.chance(0.75):
            return str(self.c.integer(0, 100))
        return self.nonconstant(self.c.choice(SCALARS), depth).text

    def packet_write(self, depth: int) -> None:
        if self.c.chance(0.5):
            self.line(f"ctx.packet[{self.offset(depth)}] = {self.expr('u8', depth).text}")
            return
        ty = self.c.choice(SCALARS)
        value = self.nonconstant(ty, depth).text
        if self.c.chance(0.5):
            self.line(f"ctx.packet.write({self.offset(depth)}, {value}, {ty})")
        else:
            self.line(f"ctx.packet.write({self.offset(depth)}, {ty}({value}))")

    # -- expressions ------------------------------------------------------------------

    def literal(self, ty: str) -> Expr:
        low, high = type_range(ty)
        value = self.c.choice(
            (0, 1, 2, 3, 7, high, low, self.c.integer(low, high), self.c.integer(-9, 9))
        )
        value = min(max(value, low), high)
        text = f"({value})" if value < 0 else str(value)
        return Expr(text, ty, constant=value)

    def condition(self, depth: int) -> str:
        form = self.c.integer(0, 9 if depth > 0 else 5)
        if form <= 4:
            ty = self.c.choice(SCALARS)
            a, b = self.pair(ty, depth + 1)
            return f"{a.text} {self.c.choice(COMPARE_OPS)} {b.text}"
        if form == 5:
            word = self.c.choice(("in", "not in"))
            return f"{self.key(0)} {word} table"
        if form == 6:
            return f"not ({self.condition(depth - 1)})"
        word = self.c.choice(("and", "or"))
        return f"({self.condition(depth - 1)} {word} {self.condition(depth - 1)})"

    def expr(self, ty: str, depth: int) -> Expr:
        """An expression whose type widens to ``ty``."""
        if depth <= 0 or self.c.chance(0.25):
            return self.leaf(ty)
        form = self.c.integer(0, 9)
        if form <= 3:
            return self.binary(ty, depth)
        if form == 4:
            inner = self.nonconstant(self.c.choice(SCALARS), depth - 1)
            return Expr(f"{ty}({inner.text})", ty)
        if form == 5:
            operand = self.nonconstant(ty, depth - 1)
            return Expr(f"({self.c.choice(('-', '~'))}{operand.text})", operand.type)
        if form == 6:
            # Literal branches would take their default type (i64), not ``ty``.
            a, b = self.nonconstant(ty, depth - 1), self.nonconstant(ty, depth - 1)
            result = a.type if BITS[a.type] >= BITS[b.type] else b.type
            return Expr(f"({a.text} if {self.condition(depth - 1)} else {b.text})", result)
        if form == 7:
            called = self.call_expr(ty, depth)
            if called is not None:
                return called
        if form == 8:
            return self.map_read(ty, depth)
        return self.packet_read(ty, depth)

    def nonconstant(self, ty: str, depth: int) -> Expr:
        """Like :meth:`expr`, never a bare literal (so conversions and unary
        operators never see a constant the front end would fold and check)."""
        for _ in range(3):
            found = self.expr(ty, depth)
            if found.constant is None:
                return found
        names = [n for n, v in self.scope.variables.items() if widens_to(v.type, ty)]
        if names:
            name = self.c.choice(names)
            return Expr(name, self.scope.variables[name].type)
        return self.map_read(ty, -1)

    def leaf(self, ty: str) -> Expr:
        names = [n for n, v in self.scope.variables.items() if widens_to(v.type, ty)]
        if names and self.c.chance(0.7):
            name = self.c.choice(names)
            return Expr(name, self.scope.variables[name].type)
        if self.scope.has_ctx and self.c.chance(0.1):
            return self.adapt(Expr("len(ctx.packet)", "u32"), ty)
        return self.literal(ty)

    def adapt(self, value: Expr, ty: str) -> Expr:
        """``value`` converted to ``ty`` when it does not widen to it."""
        if widens_to(value.type, ty):
            return value
        return Expr(f"{ty}({value.text})", ty)

    def operand(self, ty: str, depth: int, op: str) -> Expr:
        """A right operand for ``op``: a literal divisor is never zero."""
        value = self.expr(ty, depth - 1)
        if op in ("//", "%") and value.constant == 0:
            return Expr("1", ty, constant=1)
        return value

    def shift_amount(self, depth: int) -> Expr:
        if self.c.chance(0.6):
            value = self.c.integer(0, 70)
            return Expr(str(value), "i64", constant=value)
        return self.nonconstant(self.c.choice(SCALARS), depth - 1)

    def pair(self, ty: str, depth: int, op: str = "") -> tuple[Expr, Expr]:
        """Two operands that unify to a type widening to ``ty``: a literal
        operand fits the type of the other, and they are never both literals."""
        a = self.expr(ty, depth - 1)
        if a.constant is None:
            return a, self.operand(a.type, depth, op)
        b = self.nonconstant(ty, depth - 1)
        low, high = type_range(b.type)
        if not low <= a.constant <= high:
            a = self.literal(b.type)
        return Expr(a.text, b.type, a.constant), b

    def binary(self, ty: str, depth: int) -> Expr:
        op = self.c.choice(ARITH_OPS)
        if op in ("<<", ">>"):
            left = self.nonconstant(ty, depth - 1)
            return Expr(f"({left.text} {op} {self.shift_amount(depth).text})", left.type)
        a, b = self.pair(ty, depth, op)
        result = a.type if BITS[a.type] >= BITS[b.type] else b.type
        return Expr(f"({a.text} {op} {b.text})", result)

    def call(self, sig: FunctionSig, depth: int) -> str:
        self.scope.calls_left -= 1
        args = ["ctx"] if sig.takes_ctx else []
        if self.shape.checks:
            args += [self.expr(ty, depth).text for _, ty in sig.params]
        else:  # values the compiler cannot fold, so no call collapses to a constant
            args += [self.nonconstant(ty, depth).text for _, ty in sig.params]
        return f"{sig.name}({', '.join(args)})"

    def call_expr(self, ty: str, depth: int) -> Expr | None:
        if not self.scope.calls_left:
            return None
        options = [
            f for f in self.scope.callable
            if f.returns is not None and (self.scope.has_ctx or not f.takes_ctx)
        ]
        if not options:
            return None
        sig = self.c.choice(options)
        assert sig.returns is not None
        return self.adapt(Expr(self.call(sig, depth - 1), sig.returns), ty)

    def map_read(self, ty: str, depth: int) -> Expr:
        form = self.c.integer(0, 2)
        if form == 0:
            found = Expr(f"table[{self.key(depth - 1)}]", self.hash_value)
        elif form == 1:
            name, field_type = self.c.choice(self.fields)
            found = Expr(f"records[{self.index(depth - 1)}].{name}", field_type)
        else:
            found = Expr(f"percpu[{self.index(depth - 1)}]", self.pcpu_value)
        return self.adapt(found, ty)

    def packet_read(self, ty: str, depth: int) -> Expr:
        if not self.scope.has_ctx:
            return self.leaf(ty)
        offset = self.offset(depth - 1)
        form = self.c.integer(0, 3)
        if form == 0:
            return self.adapt(Expr(f"ctx.packet[{offset}]", "u8"), ty)
        if form == 1 and not SIGNED[ty] and BITS[ty] >= 16:
            order = "be16" if BITS[ty] == 16 or self.c.chance(0.5) else "be32"
            return Expr(f"ctx.packet.read({offset}, {order})", "u16" if order == "be16" else "u32")
        return self.adapt(Expr(f"ctx.packet.read({offset}, {ty})", ty), ty)


def generate(chooser: Chooser, shape: Shape = SMALL) -> str:
    """The source text of one extension (its program is ``prog``)."""
    return Generator(chooser, shape).module()


def generate_from_seed(seed: int, shape: Shape = SMALL) -> str:
    return generate(RandomChooser(seed), shape)


def packets_from_seed(seed: int, count: int = 3) -> list[bytes]:
    """Test packets for the soak run: 14 bytes (XDP's minimum) and up."""
    rand = random.Random(seed ^ 0x5EED)
    return [rand.randbytes(rand.randint(14, 120)) for _ in range(count)]


def programs(shape: Shape = SMALL) -> SearchStrategy[str]:
    """Hypothesis strategy: the source text of one extension."""
    from hypothesis import strategies

    return strategies.composite(lambda draw: generate(DrawChooser(draw), shape))()


def packet_lists() -> SearchStrategy[list[bytes]]:
    """Hypothesis strategy: one to three packets of 14 bytes (XDP's minimum) and up."""
    from hypothesis import strategies

    return strategies.lists(strategies.binary(min_size=14, max_size=120), min_size=1, max_size=3)


# -- running a module in the kernel and in the interpreter ---------------------------


@dataclass(frozen=True)
class Observation:
    """What one test run showed: comparable between kernel and host mode."""

    retval: int
    packet: bytes
    exception: tuple[str, str, tuple[tuple[str, int], ...]] | None  # kind, headline, frames

    @classmethod
    def of(cls, result: RunResult) -> Observation:
        report: ExceptionReport | None = result.exception
        raised = None
        if report is not None:
            frames = tuple((f.function, f.line) for f in report.frames)
            raised = (report.kind, report.headline, frames)
        return cls(result.retval, bytes(result.packet), raised)


MapContents = dict[str, dict[bytes, tuple[bytes, ...]]]


@dataclass
class Outcome:
    """The verdict of :func:`differential` on one module."""

    accepted: bool = False
    loaded: bool = False
    diagnostics: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # rejections, crashes, mismatches
    load_stats: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.accepted and not self.problems


@contextmanager
def pinned_cpu() -> Iterator[int]:
    """Run on one CPU, so kernel test runs and the interpreter use the same
    per-CPU map values; the CPU set is restored afterwards."""
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


def kernel_maps(extension: Extension, names: list[str]) -> MapContents:
    out: MapContents = {}
    cpus = possible_cpu_count()
    for name in names:
        decl = extension.compiled.map(name)
        fd = extension.module.map_fd(name)
        per_cpu = decl.kind in PER_CPU_KINDS
        stride = (decl.value_size + 7) & ~7
        size = stride * cpus if per_cpu else decl.value_size
        entries: dict[bytes, tuple[bytes, ...]] = {}
        key = syscall.map_next_key(fd, None, decl.key_size)
        while key is not None:
            value = syscall.map_lookup(fd, key, size)
            if value is not None:
                if per_cpu:
                    entries[key] = tuple(
                        value[i * stride : i * stride + decl.value_size] for i in range(cpus)
                    )
                else:
                    entries[key] = (value,)
            key = syscall.map_next_key(fd, key, decl.key_size)
        out[name] = entries
    return out


def host_maps(extension: HostExtension, names: list[str]) -> MapContents:
    return {
        name: {
            key: tuple(bytes(v) for v in values)
            for key, values in extension.interpreter.maps[name].entries.items()
        }
        for name in names
    }


def _differences(
    reference_label: str, reference: object, label: str, other: object, what: str
) -> list[str]:
    if reference == other:
        return []
    return [f"{what} differs: {reference_label} saw {reference!r}, {label} saw {other!r}"]


def differential(
    source: str,
    packets: Sequence[bytes],
    *,
    filename: str = "generated.py",
    kernel: bool = True,
    levels: Sequence[int] = (1, 0),
) -> Outcome:
    """Check ``source``; when accepted, run program ``prog`` on ``packets`` (in
    order, maps carrying over) at each optimisation level in host mode and,
    with ``kernel``, in the kernel, and compare everything with host mode at
    the first level. Each packet needs 14 bytes at least (XDP's minimum)."""
    outcome = Outcome()
    outcome.diagnostics = [str(d) for d in check(source, filename)]
    if outcome.diagnostics:
        return outcome
    outcome.accepted = True
    runs: dict[str, tuple[list[Observation], MapContents]] = {}
    with pinned_cpu() as cpu:
        for level in levels:
            compilation = Compilation.from_ir(compile_to_ir(source, filename), opt_level=level)
            names = [m.name for m in compilation.optimized_ir.maps]
            try:
                with load_host(compilation, cpu=cpu) as host:
                    seen = [Observation.of(host.prog.test_run(p)) for p in packets]
                    runs[f"host O{level}"] = (seen, host_maps(host, names))
            except Exception as error:  # any crash here is a pykex bug worth reporting
                outcome.problems.append(f"host O{level} crashed: {type(error).__name__}: {error}")
            if not kernel:
                continue
            started = time.perf_counter()
            try:
                extension = load(compilation)
            except VerifierRejectionError as error:
                outcome.problems.append(f"kernel O{level} rejected it: {error}")
                continue
            except Exception as error:
                outcome.problems.append(
                    f"kernel O{level} failed to load: {type(error).__name__}: {error}"
                )
                continue
            outcome.loaded = True
            outcome.load_stats[f"O{level} load seconds"] = time.perf_counter() - started
            with extension:
                seen = [Observation.of(extension.prog.test_run(p)) for p in packets]
                runs[f"kernel O{level}"] = (seen, kernel_maps(extension, names))
    if not runs:
        return outcome
    reference_label, (reference, reference_maps) = next(iter(runs.items()))
    for label, (seen, maps) in list(runs.items())[1:]:
        for index, (want, got) in enumerate(zip(reference, seen, strict=True)):
            outcome.problems += _differences(reference_label, want, label, got, f"run {index}")
        for name in reference_maps:
            outcome.problems += _differences(
                reference_label, reference_maps[name], label, maps[name], f"map {name}"
            )
    return outcome
