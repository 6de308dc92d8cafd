"""Type-check a function body and lower it to IR in one walk.

Each program is lowered into one :class:`~pykex.ir.nodes.Function`; calls to
the module's own functions are inlined with their own frame slots and
``Loc.caller`` set to the call site. The checker's knowledge (types of
locals, which locals are assigned, which optional references were tested)
flows along the same walk, so a statement is checked exactly as it is
lowered. Helper functions nobody calls are lowered too, into a function
that is thrown away, so their errors are still reported.

Memory model (docs/compiler.md): scalar locals live in frame slots; structs
and arrays are places (frame, map value, global); references to map values
are pointer temps; a packet pointer never outlives the block it is checked in.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field

from pykex.btf import TracepointFormat
from pykex.ir.nodes import (
    BOOL,
    I64,
    U8,
    U32,
    U64,
    AtomicAdd,
    BinOp,
    Block,
    Branch,
    Call,
    Cast,
    Compare,
    ContextPtr,
    FrameAddr,
    Function,
    GlobalAddr,
    Instr,
    Jump,
    Load,
    Loc,
    LoopBack,
    MapRef,
    MemCopy,
    MemZero,
    PacketLen,
    PacketPtr,
    Return,
    Scalar,
    Store,
    Temp,
    UnOp,
    Value,
)
from pykex.lang import names
from pykex.lang.contexts import (
    ContextLayoutError,
    context_field,
    tracepoint_array,
    tracepoint_string,
    unsupported_tracepoint_field,
)
from pykex.lang.diagnostics import SourceError
from pykex.lang.kernel_calls import KERNEL_FUNCTIONS, KernelCallsMixin
from pykex.lang.module import (
    FunctionDecl,
    Module,
    ProgramSpec,
    holds_lock,
    ord_constant,
    tuple_item,
)
from pykex.lang.resources import Held, ResourcesMixin
from pykex.lang.slices import SlicesMixin
from pykex.lang.types import (
    BOOL_T,
    I64_T,
    U8_T,
    U32_T,
    U64_T,
    ArrayT,
    BoolT,
    BytesT,
    ContextT,
    IntT,
    KernelT,
    LiteralT,
    LockT,
    MapT,
    NoneT,
    PacketT,
    RangeT,
    RefT,
    SliceT,
    StringT,
    StrT,
    StructT,
    TupleT,
    Type,
    TypeT,
)
from pykex.lang.values import Local, Operand, Place, State, join

BPF_ANY, BPF_NOEXIST = 0, 1
SKB_LEN_OFFSET = 0  # struct __sk_buff.len
MAX_RAISE_VALUES = 3  # what the error channel records

_ARITH = {
    ast.Add: ("add", "add"),
    ast.Sub: ("sub", "subtract"),
    ast.Mult: ("mul", "multiply"),
    ast.FloorDiv: ("div", "divide"),
    ast.Mod: ("mod", "take the modulo of"),
    ast.BitAnd: ("and", "and"),
    ast.BitOr: ("or", "or"),
    ast.BitXor: ("xor", "xor"),
    ast.LShift: ("shl", "shift"),
    ast.RShift: ("shr", "shift"),
}
_SYMBOL = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%",
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
}
_COMPARE = {
    ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge",
}
_UNSUPPORTED_EXPR = {
    ast.Lambda: ("lambdas are not supported", "define a function with def"),
    ast.ListComp: ("comprehensions are not supported", "write a for loop"),
    ast.SetComp: ("comprehensions are not supported", "write a for loop"),
    ast.DictComp: ("comprehensions are not supported", "write a for loop"),
    ast.GeneratorExp: ("generator expressions are not supported", "write a for loop"),
    ast.List: ("lists are not supported", "use an Array[T, N] field or a map"),
    ast.Dict: ("dicts are not supported", "declare a HashMap at module level"),
    ast.Set: ("sets are not supported", "declare a HashMap at module level"),
    ast.Tuple: ("tuples are not supported", "use a Struct"),
    ast.JoinedStr: ("f-strings are not supported", 'print the values: print("x", x)'),
    ast.Await: ("await is not supported in extensions", None),
    ast.Yield: ("generators are not supported in extensions", None),
    ast.YieldFrom: ("generators are not supported in extensions", None),
    ast.Starred: ("unpacking with * is not supported", None),
}
_UNSUPPORTED_STMT = {
    ast.Global: ("`global` is not supported",
                 "functions read module globals directly; to update shared state, keep it "
                 "in a Struct global (state.count += 1) or in a map"),
    ast.Nonlocal: ("`nonlocal` is not supported", None),
    ast.Try: ("try/except is not supported yet",
              "a failed check ends the program with its on_error verdict"),
    ast.AsyncWith: ("async code is not supported in extensions", None),
    ast.AsyncFor: ("async code is not supported in extensions", None),
    ast.ClassDef: ("classes can only be declared at module level, as Structs", None),
    ast.FunctionDef: ("nested functions are not supported", "define it at module level"),
    ast.AsyncFunctionDef: ("async functions are not supported in extensions", None),
    ast.Import: ("imports belong at module level", None),
    ast.ImportFrom: ("imports belong at module level", None),
    ast.Match: ("match statements are not supported", "use if/elif"),
}


class Poisoned(Exception):
    """An expression involves something already reported; skip it silently."""


@dataclass
class Scope:
    """One inlined instance of a function."""

    decl: FunctionDecl | None
    name: str
    caller: Loc | None
    local_names: set[str]
    locals: dict[str, Local] = field(default_factory=dict)
    poisoned: set[str] = field(default_factory=set)
    return_slot: int | None = None
    return_label: str | None = None
    return_states: list[State] = field(default_factory=list)
    held_base: int = 0  # resources held when the function was entered
    expired: set[str] = field(default_factory=set)  # records whose with block ended
    loops: list[LoopTargets] = field(default_factory=list)
    state: State | None = field(default_factory=State)


@dataclass
class LoopTargets:
    continue_label: str
    break_label: str
    exhausted: str
    back_edge: bool  # continue is a back edge (while) or a jump to the latch (for)
    held_depth: int = 0  # resources held when the loop began
    break_states: list[State] = field(default_factory=list)


class ModuleLowering:
    """State shared by every function of a module: the ``.rodata`` strings and the
    runtime's globals (drop counters, crash-stop flags), each a field of its own."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.rodata = bytearray()
        self._strings: dict[bytes, int] = {}
        self._tables: dict[object, int] = {}
        self.drop_counters: list[str] = []  # rings, in the order of their u64 counters
        self.crash_flags: list[str] = []  # crash_stop programs, one u32 flag each
        self.records: dict[str, set[Type]] = {}  # event map -> the types of its records

    def record_sent(self, ring: str, ty: Type) -> None:
        self.records.setdefault(ring, set()).add(ty)

    def record_type(self, ring: str) -> object:
        """The layout of every record sent on ``ring`` when they are all one Struct."""
        sent = self.records.get(ring, set())
        if len(sent) == 1 and isinstance(ty := next(iter(sent)), StructT):
            return ty.layout
        return None

    def drop_offset(self, ring: str) -> int:
        """Offset of ring ``ring``'s drop counter in the drops global."""
        if ring not in self.drop_counters:
            self.drop_counters.append(ring)
        return 8 * self.drop_counters.index(ring)

    def flag_offset(self, program: str) -> int:
        if program not in self.crash_flags:
            self.crash_flags.append(program)
        return 4 * self.crash_flags.index(program)

    def table(self, values: tuple[int, ...]) -> int:
        """Offset in ``.rodata`` of ``values`` as 8-byte little-endian words (a tuple
        constant read at run-time indexes)."""
        key = ("table", values)
        if key not in self._tables:
            self._tables[key] = len(self.rodata)
            for value in values:
                self.rodata += (value & (1 << 64) - 1).to_bytes(8, "little")
        return self._tables[key]

    def string(self, data: bytes) -> int:
        """Offset of ``data`` (NUL-terminated) in ``.rodata``."""
        if data not in self._strings:
            self._strings[data] = len(self.rodata)
            self.rodata += data + b"\0"
            while len(self.rodata) % 8:
                self.rodata.append(0)
        return self._strings[data]


class FunctionLowering(ResourcesMixin, KernelCallsMixin, SlicesMixin):
    def __init__(self, shared: ModuleLowering, name: str, recursive: set[str],
                 program: ProgramSpec | None = None) -> None:
        self.shared = shared
        self.program = program
        self.tracepoint: TracepointFormat | None = program.tracepoint if program else None
        self.held: list[Held] = []
        self.module = shared.module
        self.reporter = shared.module.reporter
        self.recursive = recursive
        self.fn = Function(name)
        self.block: Block | None = None
        self.cold: list[Block] = []
        self._labels = 0
        self._cache: dict[object, Temp] = {}
        self.scope: Scope
        self.node: ast.AST | None = None

    # -- building blocks ---------------------------------------------------------------

    def label(self, hint: str) -> str:
        self._labels += 1
        return f"{hint}{self._labels}"

    def start(self, label: str) -> None:
        self.block = Block(label)
        self.fn.blocks.append(self.block)
        self._cache = {}

    def emit(self, instr: Instr, checked: bool = True) -> None:
        """Append ``instr``; ``checked`` refuses helper calls under a spin lock."""
        if checked:
            self.check_call_allowed(instr)
        if self.block is None:
            self.start(self.label("unreachable"))
        if instr.loc is None:
            instr.loc = self.loc()
        assert self.block is not None
        self.block.instrs.append(instr)

    def end(self, terminator: Instr) -> None:
        self.emit(terminator)
        self.block = None
        self.scope.state = None

    def jump(self, label: str) -> None:
        if self.block is not None:
            self.end(Jump(label))

    def cold_raise(self, kind: str, message: str, args: list[Value], node: ast.AST,
                   before: list[Instr] | None = None) -> str:
        """A block, placed after the hot code, that raises ``kind``."""
        label = self.label("raise")
        loc = self.loc(node)
        instrs = list(before or [])
        for instr in instrs:
            instr.loc = loc
        instrs += self.raise_instrs(kind, message, args, loc)
        self.cold.append(Block(label, instrs))
        return label

    def loc(self, node: ast.AST | None = None) -> Loc:
        node = node or self.node
        return self.module.loc(node or ast.Pass(lineno=0, col_offset=0), self.scope.name,
                               self.scope.caller)

    def temp(self, hint: str = "", pointer: bool = False) -> Temp:
        return self.fn.new_temp(hint, pointer)

    def alloc(self, size: int, align: int = 8) -> int:
        offset = (self.fn.frame_size + align - 1) // align * align
        self.fn.frame_size = offset + size
        return offset

    def frame_base(self) -> Temp:
        key = "frame"
        if key not in self._cache or self.block is None:
            t = self.temp("fp", pointer=True)
            self.emit(FrameAddr(t, 0))
            self._cache[key] = t
        return self._cache[key]

    def context(self) -> Temp:
        if "ctx" not in self._cache or self.block is None:
            t = self.temp("ctx", pointer=True)
            self.emit(ContextPtr(t))
            self._cache["ctx"] = t
        return self._cache["ctx"]

    def base(self, place: Place) -> tuple[Temp, int]:
        if place.kind == "frame":
            return self.frame_base(), place.offset
        if place.kind == "ptr":
            assert place.temp is not None
            return place.temp, place.offset
        key = ("global", place.map)
        if key not in self._cache or self.block is None:
            t = self.temp("g", pointer=True)
            assert place.map is not None
            self.emit(GlobalAddr(t, place.map, 0))
            self._cache[key] = t
        return self._cache[key], place.offset

    def pointer_to(self, place: Place) -> Temp:
        """A pointer temp to exactly ``place`` (what helpers take)."""
        if place.kind == "frame":
            t = self.temp("p", pointer=True)
            self.emit(FrameAddr(t, place.offset))
            return t
        if place.kind == "global":
            t = self.temp("p", pointer=True)
            assert place.map is not None
            self.emit(GlobalAddr(t, place.map, place.offset))
            return t
        assert place.temp is not None
        if place.offset == 0:
            return place.temp
        t = self.temp("p", pointer=True)
        self.emit(BinOp(t, "add", place.temp, place.offset, U64))
        return t

    def load(self, place: Place, ty: Type) -> Value:
        base, offset = self.base(place)
        t = self.temp()
        mem = _memory_int(ty)
        self.emit(Load(t, base, offset, mem.scalar, big_endian=_big_endian(ty)))
        return t

    def store(self, place: Place, ty: Type, value: Value) -> None:
        base, offset = self.base(place)
        mem = _memory_int(ty)
        self.emit(Store(base, offset, value, mem.scalar, big_endian=_big_endian(ty)))

    def copy(self, dst: Place, src: Place, size: int) -> None:
        d, doff = self.base(dst)
        s, soff = self.base(src)
        self.emit(MemCopy(d, doff, s, soff, size))

    # -- entry points --------------------------------------------------------------------

    def lower_program(self, decl: FunctionDecl) -> Function:
        """Lower program ``decl`` as a whole function."""
        self.scope = Scope(decl, decl.name, None, _assigned_names(decl.node))
        self.start("entry")
        for name, ty, _ in decl.params:
            self.scope.locals[name] = Local(ty, parameter=True)
            self.scope.state = self.scope.state.assign(name, False)  # type: ignore[union-attr]
        assert decl.program is not None
        self.crash_stop_entry(decl.program.on_error)
        self.body(decl.node.body)
        if self.block is not None:
            self.node = decl.node
            self.reporter.error(_last_line(decl.node), f"program {decl.name} can reach its end "
                                "without returning a verdict", "end it with a return")
            self.end(Return(0))
        return self.finish()

    def lower_standalone(self, decl: FunctionDecl) -> None:
        """Check a function no program calls, as if called with unknown arguments."""
        self.scope = Scope(decl, decl.name, None, _assigned_names(decl.node))
        self.start("entry")
        self.scope.return_label = "return"
        if decl.returns.is_data:
            self.scope.return_slot = self.alloc(_size(decl.returns))
        for name, ty, _ in decl.params:
            local = Local(ty, parameter=True)
            if isinstance(ty, IntT | BoolT):
                local.slot = self.alloc(8)
            elif isinstance(ty, StructT | ArrayT):
                local.place = Place("frame", self.alloc(ty.size))
            self.scope.locals[name] = local
            self.scope.state = self.scope.state.assign(name, False)  # type: ignore[union-attr]
        self.body(decl.node.body)
        self.check_fallthrough(decl)

    def finish(self) -> Function:
        self.fn.blocks += self.cold
        self.cold = []
        if not self.reporter:  # with errors, blocks may lack terminators; nobody runs them
            self.fn.blocks = _reachable(self.fn.blocks)
        self.fn.frame_size = (self.fn.frame_size + 7) // 8 * 8
        return self.fn

    def check_fallthrough(self, decl: FunctionDecl) -> None:
        if self.block is None:
            return
        if not isinstance(decl.returns, NoneT):
            self.reporter.error(_last_line(decl.node), f"function {decl.name} can reach its "
                                f"end without returning a {decl.returns}",
                                "end it with a return")
        assert self.scope.state is not None
        self.scope.return_states.append(self.scope.state)
        assert self.scope.return_label is not None
        self.jump(self.scope.return_label)

    # -- statements ------------------------------------------------------------------------

    def body(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            if self.scope.state is None and self.block is None:
                # Unreachable code after return/raise/break: still checked, never run.
                self.scope.state = State(frozenset(self.scope.local_names))
            try:
                self.statement(statement)
            except SourceError as error:
                self.reporter.record(error if error.node else SourceError(
                    statement, error.message, error.hint))
                self._recover(statement)
            except Poisoned:
                self._recover(statement)

    def _recover(self, statement: ast.stmt) -> None:
        """Carry on after a reported error in ``statement`` without piling up
        errors that only follow from it (the IR is discarded anyway)."""
        self._poison_targets(statement)
        if isinstance(statement, ast.Return | ast.Raise) and self.block is not None:
            self.end(Return(0))

    def _poison_targets(self, statement: ast.stmt) -> None:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                if node.id not in self.scope.locals:
                    self.scope.poisoned.add(node.id)
                if self.scope.state is not None:
                    self.scope.state = self.scope.state.assign(node.id, True)

    def statement(self, node: ast.stmt) -> None:
        self.node = node
        method = getattr(self, f"stmt_{type(node).__name__}", None)
        if method is None:
            message, hint = _UNSUPPORTED_STMT.get(
                type(node), (f"{type(node).__name__} statements are not supported", None))
            raise SourceError(node, message, hint)
        method(node)

    def stmt_Pass(self, node: ast.Pass) -> None:
        pass

    def stmt_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring or a string used as a comment
        if not isinstance(node.value, ast.Call | ast.NamedExpr):
            raise SourceError(node.value, "this expression has no effect")
        self.expr(node.value, statement=True)

    def stmt_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) != 1:
            raise SourceError(node, "chained assignment (a = b = ...) is not supported",
                              "assign each name separately")
        target = node.targets[0]
        if isinstance(target, ast.Tuple | ast.List):
            raise SourceError(target, "tuple assignment is not supported",
                              "assign each name separately")
        if isinstance(target, ast.Name):
            self.assign_name(target, node.value, None)
        else:
            self.assign_to(target, node.value)

    def stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise SourceError(node, "annotations declare local names only")
        ty = self.resolve_type(node.annotation)
        name = node.target.id
        if name in self.scope.locals and self.scope.locals[name].type != ty:
            raise SourceError(node.target, f"{name} is already a {self.scope.locals[name].type}")
        if name not in self.scope.locals:
            self.declare(name, ty, node.target)
        if node.value is not None:
            self.assign_name(node.target, node.value, ty)

    def stmt_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name) and node.target.id in self.scope.locals:
            local = self.scope.locals[node.target.id]
            if isinstance(local.type, RefT):
                raise SourceError(node.target, f"{node.target.id} refers to a value in map "
                                  f"{local.type.map}; it cannot be changed through the name",
                                  "update the map: m[k] += 1, or use atomic_add("
                                  f"{node.target.id}, n)")
        lvalue = self.lvalue(node.target)
        current = self.read_lvalue(lvalue, node.target)
        value = self.expr(node.value, flexible=True)
        result = self.arith(node, node.op, current, value, expected=lvalue.type)
        self.write_lvalue(lvalue, result, node)

    def stmt_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if not isinstance(target, ast.Subscript):
                raise SourceError(target, "del works only on map entries: del m[key]")
            container = self.expr(target.value)
            if not isinstance(container.type, MapT):
                raise SourceError(target, "del works only on map entries: del m[key]")
            mt = container.type
            if not mt.is_keyed:
                raise SourceError(target, f"cannot delete from {mt.kind} {mt.name}")
            if mt.is_array:
                raise SourceError(target, f"cannot delete from {mt.kind} {mt.name}: its "
                                  "entries always exist", "store a zero value instead")
            key_ptr, key_args = self.key_pointer(mt, target.slice)
            m = self.temp("map", pointer=True)
            self.emit(MapRef(m, mt.name))
            result = self.temp("err")
            self.emit(Call(result, "bpf_map_delete_elem", [m, key_ptr]))
            ok = self.label("deleted")
            fail = self.cold_raise("KeyError", _key_message(mt, key_args), key_args, target)
            self.end_branch("ne", result, 0, True, fail, ok)
            self.start(ok)

    def end_branch(self, op: str, a: Value, b: Value, signed: bool, then: str, orelse: str
                   ) -> None:
        state = self.scope.state
        self.end(Branch(op, a, b, signed, then, orelse))
        self.scope.state = state

    def stmt_If(self, node: ast.If) -> None:
        then, orelse, after = self.label("then"), self.label("else"), self.label("endif")
        on_true, on_false = self.branch_on(node.test, then, orelse if node.orelse else after)
        self.start(then)
        self.scope.state = on_true
        self.body(node.body)
        end_then = self.scope.state
        self.jump(after)
        end_else = on_false
        if node.orelse:
            self.start(orelse)
            self.scope.state = on_false
            self.body(node.orelse)
            end_else = self.scope.state
            self.jump(after)
        state = join(end_then, end_else)
        if state is not None:
            self.start(after)
        self.scope.state = state

    def loop_entry_state(self, node: ast.While | ast.For) -> State:
        """The state at a loop's head: what holds on entry, minus narrowings
        the body may undo by assigning."""
        assert self.scope.state is not None
        assigned = _assigned_in(node.body)
        return State(self.scope.state.assigned, self.scope.state.narrowed - assigned)

    def stmt_While(self, node: ast.While) -> None:
        if node.orelse:
            raise SourceError(node, "while/else is not supported")
        head, body, exit_, exhausted = (self.label(h) for h in ("while", "body", "endwhile",
                                                                 "exhausted"))
        entry = self.loop_entry_state(node)
        self.jump(head)
        self.start(head)
        self.scope.state = entry
        forever = isinstance(node.test, ast.Constant) and node.test.value is True
        if forever:
            on_true, on_false = entry, None
            self.jump(body)
        else:
            on_true, on_false = self.branch_on(node.test, body, exit_)
        loop = LoopTargets(head, exit_, exhausted, back_edge=True, held_depth=len(self.held))
        self.run_loop_body(node.body, body, on_true, loop)
        self.cold.append(Block(exhausted, self.raise_instrs(
            "TerminationError", "loop budget exhausted", [], self.loc(node))))
        state = join(on_false, *loop.break_states)
        if state is not None:
            self.start(exit_)
        self.scope.state = state

    def run_loop_body(self, statements: list[ast.stmt], label: str, state: State | None,
                      loop: LoopTargets) -> None:
        self.start(label)
        self.scope.state = state
        self.scope.loops.append(loop)
        try:
            self.body(statements)
        finally:
            self.scope.loops.pop()
        if self.block is not None:
            if loop.back_edge:
                self.end(LoopBack(loop.continue_label, loop.exhausted))
            else:
                self.jump(loop.continue_label)

    def stmt_For(self, node: ast.For) -> None:
        if node.orelse:
            raise SourceError(node, "for/else is not supported")
        it = node.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
                and it.func.id == "range" and "range" not in self.scope.local_names):
            if isinstance(it, ast.Name) and it.id in self.module.tuples:
                raise SourceError(it, "for loops iterate over range(...) only",
                                  f"write `for i in range(len({it.id})):` and read {it.id}[i]")
            raise SourceError(it, "for loops iterate over range(...) only",
                              "write `for i in range(n):`, or a while loop")
        if it.keywords or not 1 <= len(it.args) <= 3:
            raise SourceError(it, "range takes 1 to 3 arguments")
        if not isinstance(node.target, ast.Name):
            raise SourceError(node.target, "the loop variable must be a plain name")
        name = node.target.id
        declared = self.scope.locals.get(name)
        if declared is not None and not isinstance(declared.type, IntT | RangeT):
            raise SourceError(node.target, f"{name} is a {declared.type}, not an integer")
        args = [self.expr(a) for a in it.args]
        start = args[0] if len(args) > 1 else Operand(LiteralT(0), 0)
        stop = args[1] if len(args) > 1 else args[0]
        step_node = it.args[2] if len(args) == 3 else None
        step = args[2] if len(args) == 3 else Operand(LiteralT(1), 1)
        if not isinstance(step.type, LiteralT) and not (
            isinstance(step.value, int)
        ):
            raise SourceError(step_node, "the step of range() must be a constant",
                              "loop with while for a variable step")
        step_value = step.value
        assert isinstance(step_value, int)
        if step_value == 0:
            raise SourceError(step_node, "range() step must not be zero")
        wanted = declared.type if declared is not None and isinstance(
            declared.type, IntT) else None
        ty = self.unify([start, stop], it, "range", expected=wanted)
        if not isinstance(ty, IntT):
            raise SourceError(it, "range() needs integer bounds")
        if wanted is not None and ty != wanted:
            raise SourceError(it, f"range of {ty} cannot drive loop variable {name} of type "
                              f"{wanted}", f"convert the bounds: range({wanted}(...))")
        start_v = self.coerce(start, ty, it).value
        stop_v = self.coerce(stop, ty, it).value
        counter_type = IntT(Scalar(64, ty.signed))
        counter = Place("frame", self.alloc(8))
        end = Place("frame", self.alloc(8))
        assert start_v is not None and stop_v is not None
        self.store(counter, counter_type, start_v)
        self.store(end, counter_type, stop_v)
        if declared is None:
            counted = self.counter_range(name)
            self.declare(name, ty if counted is None else counted, node.target)
        local = self.scope.locals[name]
        head, body, latch, exit_, exhausted = (
            self.label(h) for h in ("for", "body", "latch", "endfor", "exhausted"))
        entry = self.loop_entry_state(node)
        self.jump(head)
        self.start(head)
        self.scope.state = entry
        current = self.load(counter, counter_type)
        limit = self.load(end, counter_type)
        self.end_branch("lt" if step_value > 0 else "gt", current, limit, ty.signed, body,
                        exit_)
        self.start(body)
        assert local.slot is not None
        self.store(Place("frame", local.slot), _slot_type(local.type),
                   self.load(counter, counter_type))
        body_state = entry.assign(name, False)
        loop = LoopTargets(latch, exit_, exhausted, back_edge=False, held_depth=len(self.held))
        inner = self.label("iteration")
        self.jump(inner)
        self.run_loop_body(node.body, inner, body_state, loop)
        self.start(latch)
        value = self.load(counter, counter_type)
        nxt = self.temp()
        self.emit(BinOp(nxt, "add", value, step_value, counter_type.scalar))
        self.store(counter, counter_type, nxt)
        self.end(LoopBack(head, exhausted))
        self.cold.append(Block(exhausted, self.raise_instrs(
            "TerminationError", "loop budget exhausted", [], self.loc(node))))
        self.start(exit_)
        self.scope.state = join(entry, *loop.break_states)

    def counter_range(self, name: str) -> RangeT | None:
        """The values of ``name`` when the function binds it only as the counter of
        ``for`` loops over ranges with constant bounds: like a literal, such a
        counter takes its type from its uses. None otherwise."""
        decl = self.scope.decl
        if decl is None:
            return None
        stores = [n for n in ast.walk(decl.node) if isinstance(n, ast.Name) and n.id == name
                  and isinstance(n.ctx, ast.Store)]
        loops = [n for n in ast.walk(decl.node) if isinstance(n, ast.For)
                 and isinstance(n.target, ast.Name) and n.target.id == name]
        if len(stores) != len(loops):
            return None
        values_seen: list[int] = []
        for loop in loops:
            it = loop.iter
            if not (isinstance(it, ast.Call) and 1 <= len(it.args) <= 3 and not it.keywords):
                return None
            bounds = [self.constant_value(a) for a in it.args]
            if any(b is None for b in bounds) or (len(bounds) == 3 and bounds[2] == 0):
                return None
            values = range(*bounds)  # type: ignore[arg-type]
            if values:
                values_seen += [values[0], values[-1]]
        if not values_seen:  # the loops never run: any type will do
            return RangeT(0, 0)
        low, high = min(values_seen), max(values_seen)
        return RangeT(low, high) if _one_type_holds(low, high) else None

    def stmt_Break(self, node: ast.Break) -> None:
        if not self.scope.loops:
            raise SourceError(node, "'break' outside a loop")
        loop = self.scope.loops[-1]
        assert self.scope.state is not None
        loop.break_states.append(self.scope.state)
        self.emit_releases(loop.held_depth)
        self.jump(loop.break_label)

    def stmt_Continue(self, node: ast.Continue) -> None:
        if not self.scope.loops:
            raise SourceError(node, "'continue' outside a loop")
        loop = self.scope.loops[-1]
        self.emit_releases(loop.held_depth)
        if loop.back_edge:
            self.end(LoopBack(loop.continue_label, loop.exhausted))
        else:
            self.jump(loop.continue_label)

    def stmt_Return(self, node: ast.Return) -> None:
        decl = self.scope.decl
        assert decl is not None
        if decl.program is not None and self.scope.return_label is None:
            if node.value is None:
                raise SourceError(node, f"program {decl.name} must return a verdict")
            value = self.expr(node.value)
            if isinstance(value.type, LiteralT):
                if not I64_T.fits(value.type.value):
                    raise SourceError(node.value, f"{value.type.value} is not a valid verdict")
            elif not isinstance(value.type, IntT):
                raise SourceError(node.value, f"a program returns an integer, not {value.type}")
            assert value.value is not None
            self.emit_releases(0)
            self.end(Return(value.value))
            return
        expected = decl.returns
        if node.value is None:
            if not isinstance(expected, NoneT):
                raise SourceError(node, f"{decl.name} must return a {expected}")
        else:
            if isinstance(expected, NoneT):
                raise SourceError(node.value, f"{decl.name} is declared to return nothing",
                                  f"annotate it: def {decl.name}(...) -> type:")
            value = self.coerce(self.expr(node.value, expected=expected), expected, node.value)
            assert self.scope.return_slot is not None
            self.put(Place("frame", self.scope.return_slot), expected, value)
        assert self.scope.state is not None and self.scope.return_label is not None
        self.scope.return_states.append(self.scope.state)
        self.emit_releases(self.scope.held_base)
        self.jump(self.scope.return_label)

    def stmt_Raise(self, node: ast.Raise) -> None:
        if node.exc is None:
            raise SourceError(node, "bare `raise` needs an exception being handled, and "
                              "pykex has no except blocks")
        if node.cause is not None:
            raise SourceError(node.cause, "`raise ... from ...` is not supported")
        exc = node.exc
        call_args: list[ast.expr] = []
        if isinstance(exc, ast.Call):
            if exc.keywords:
                raise SourceError(exc, "exception arguments are positional")
            call_args = exc.args
            exc = exc.func
        kind = exc.id if isinstance(exc, ast.Name) else None
        if kind not in names.EXCEPTIONS or (kind in self.scope.local_names):
            raise SourceError(exc, f"cannot raise {ast.unparse(exc)}",
                              "raise a built-in exception: ValueError, KeyError, IndexError, ...")
        if kind == "TerminationError" and self.module.prelude.get(kind) != kind:
            raise SourceError(exc, "TerminationError must be imported from pykex")
        message, values = self.message_parts(call_args, "{}")
        if len(values) > MAX_RAISE_VALUES:
            raise SourceError(node, f"an exception carries at most {MAX_RAISE_VALUES} values, "
                              f"got {len(values)}")
        assert kind is not None
        *before, raised = self.raise_instrs(kind, message, values, self.loc(node))
        for instr in before:
            self.emit(instr, checked=False)
        self.end(raised)

    def message_parts(self, args: list[ast.expr], placeholder: str) -> tuple[str, list[Value]]:
        pieces: list[str] = []
        values: list[Value] = []
        for arg in args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                text = arg.value
                pieces.append(text.replace("{", "{{").replace("}", "}}") if placeholder == "{}"
                              else text.replace("%", "%%"))
                continue
            op = self.expr(arg)
            op = self.materialise(op, arg)
            if not isinstance(op.type, IntT | BoolT):
                raise SourceError(arg, f"cannot show a {op.type} in a message",
                                  "show its integer fields")
            assert op.value is not None
            values.append(op.value)
            pieces.append(placeholder if placeholder == "{}" else _printk_spec(op.type))
        return " ".join(pieces), values

    def stmt_Assert(self, node: ast.Assert) -> None:
        ok, fail = self.label("assert_ok"), self.label("assert_fail")
        on_true, _ = self.branch_on(node.test, ok, fail)
        message = ""
        if node.msg is not None:
            if not (isinstance(node.msg, ast.Constant) and isinstance(node.msg.value, str)):
                raise SourceError(node.msg, "an assert message must be a string literal")
            message = node.msg.value.replace("{", "{{").replace("}", "}}")
        self.cold.append(Block(fail, self.raise_instrs("AssertionError", message, [],
                                                       self.loc(node))))
        self.start(ok)
        self.scope.state = on_true

    # -- locals --------------------------------------------------------------------------

    def declare(self, name: str, ty: Type, node: ast.AST) -> Local:
        if isinstance(ty, IntT):
            ty = ty.value
        if holds_lock(ty):
            raise SourceError(node, f"a {ty} holds a SpinLock, which lives in map values only",
                              "look the value up in its map: v = m[key]")
        if isinstance(ty, IntT | BoolT | KernelT | RangeT):
            local = Local(ty, slot=self.alloc(8))
        elif isinstance(ty, StructT | ArrayT):
            local = Local(ty, place=Place("frame", self.alloc(ty.size)))
        elif isinstance(ty, RefT):
            local = Local(ty, temp=self.temp(name, pointer=True))
        else:
            raise SourceError(node, _not_storable(ty, name))
        self.scope.locals[name] = local
        return local

    def assign_name(self, target: ast.Name, value_node: ast.expr, annotated: Type | None
                    ) -> Operand:
        name = target.id
        if self.module.is_user_name(name) or name in self.module.prelude:
            raise SourceError(target, f"cannot assign to module-level {name}",
                              "a local of the same name would hide it; use another name")
        local = self.scope.locals.get(name)
        expected = local.type if local is not None else annotated
        if isinstance(expected, RefT):
            expected = None
        value = self.expr(value_node, expected=expected)
        if local is None:
            ty = self.natural_type(value, value_node)
            if ty.is_data and isinstance(ty, StructT | ArrayT) and value.fresh:
                assert value.place is not None
                local = Local(ty, place=value.place)
                self.scope.locals[name] = local
                self.scope.state = self.scope.state.assign(name, True)  # type: ignore
                return value
            local = self.declare(name, ty, target)
        if local.parameter and isinstance(local.type, StructT | ArrayT | ContextT):
            raise SourceError(target, f"parameter {name} refers to the caller's value and "
                              "cannot be rebound", "use a new name")
        if isinstance(local.type, RefT):
            if not isinstance(value.type, RefT):
                raise SourceError(value_node, f"{name} refers to a value in map "
                                  f"{local.type.map}; it cannot hold a {value.type}",
                                  "use a new name, or update the map: m[k] = value")
            if value.type.checked != local.type.checked:
                raise SourceError(value_node, f"{name} is a {local.type}, not a {value.type}")
            if value.type.optional and not local.type.optional:
                raise SourceError(value_node, f"{name} holds a checked reference; this "
                                  "value may be None", "test it first, or use a new name")
            assert local.temp is not None and value.value is not None
            self.emit(_assign(local.temp, value.value))
            self.scope.state = self.scope.state.assign(  # type: ignore[union-attr]
                name, not value.type.optional)
            return value
        converted = self.coerce(value, local.type, value_node)
        self.put(self.local_place(local), local.type, converted)
        self.scope.state = self.scope.state.assign(name, True)  # type: ignore[union-attr]
        return converted

    def local_place(self, local: Local) -> Place:
        if local.slot is not None:
            return Place("frame", local.slot)
        assert local.place is not None
        return local.place

    def put(self, place: Place, ty: Type, value: Operand) -> None:
        """Store ``value`` (already of type ``ty``) at ``place``."""
        if isinstance(ty, IntT | BoolT | KernelT):
            assert value.value is not None
            self.store(place, ty, value.value)
        else:
            assert value.place is not None
            if value.place != place:
                self.copy(place, value.place, _size(ty))

    def natural_type(self, value: Operand, node: ast.expr) -> Type:
        """The type a new local gets from its first value."""
        ty = value.type
        if isinstance(ty, LiteralT):
            if names.DEFAULT_INT.fits(ty.value):
                return names.DEFAULT_INT
            if U64_T.fits(ty.value):
                return U64_T
            raise SourceError(node, f"{ty.value} does not fit in 64 bits")
        if isinstance(ty, IntT):
            return ty.value
        if isinstance(ty, RangeT):
            return _range_default(ty)
        if isinstance(ty, RefT) and ty.reserved:
            raise SourceError(node, "a reserved record keeps the name its `with` gave it",
                              "use that name, or pass it to a function")
        if holds_lock(ty):
            raise SourceError(node, f"a {ty} holds a SpinLock, which lives in map values only",
                              "look the value up in its map: v = m[key]")
        if ty.is_data or isinstance(ty, RefT | KernelT):
            return ty
        if isinstance(ty, SliceT) and ty.length:
            return ArrayT(ty.element, ty.length)
        if isinstance(ty, StringT):
            raise SourceError(node, "a string is copied into a buffer whose type gives its "
                              "size", f"annotate it: name: Bytes[64] = {ast.unparse(node)}")
        raise SourceError(node, _not_storable(ty, None))

    # -- assignment targets ----------------------------------------------------------------

    def assign_to(self, target: ast.expr, value_node: ast.expr) -> None:
        if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Slice):
            self.slice_assign(target, value_node)
            return
        if isinstance(target, ast.Subscript):
            container = self.expr(target.value)
            if isinstance(container.type, MapT):
                self.map_store(container.type, target, value_node)
                return
        lvalue = self.lvalue(target, whole=True)
        value = self.expr(value_node, expected=lvalue.type)
        if isinstance(lvalue.type, StructT | ArrayT):
            if holds_lock(lvalue.type):
                raise SourceError(target, "a value holding a SpinLock cannot be copied",
                                  "assign its other fields one by one")
            assert lvalue.place is not None
            self.put(lvalue.place, lvalue.type, self.coerce(value, lvalue.type, value_node))
            return
        self.write_lvalue(lvalue, value, value_node)

    def lvalue(self, target: ast.expr, whole: bool = False) -> LValue:
        """Where an assignment to ``target`` stores; ``whole`` allows a Struct or
        Array field or element, assigned as a whole (copied)."""
        self.node = target
        if isinstance(target, ast.Name):
            local = self.scope.locals.get(target.id)
            if local is None:
                if target.id in self.scope.poisoned:
                    raise Poisoned
                if target.id in self.module.globals:
                    raise SourceError(target, f"cannot assign to global {target.id} from a "
                                      "function", "keep shared state in a Struct global or map")
                raise SourceError(target, f"{target.id} is used before it is assigned")
            self.require_assigned(target)
            if isinstance(local.type, RefT):
                if local.type.optional and target.id not in self.scope.state.narrowed:  # type: ignore
                    raise _maybe_none(target, target.id)
                if not isinstance(local.type.target, IntT | BoolT):
                    raise SourceError(target, f"{target.id} refers to a {local.type.target}")
                assert local.temp is not None
                return LValue(local.type.target, Place("ptr", 0, local.temp))
            if not isinstance(local.type, IntT | BoolT):
                raise SourceError(target, f"cannot assign a whole {local.type} here",
                                  "assign its fields")
            return LValue(local.type, self.local_place(local))
        if isinstance(target, ast.Attribute):
            base = self.expr(target.value)
            if isinstance(base.type, ContextT):
                offset, ty, writable = self.context_field(base.type, target)
                if not writable:
                    raise SourceError(target, f"{base.type}.{target.attr} is read-only")
                return LValue(ty, None, ctx_offset=offset)
            place, ty = self.field_place(base, target)
            if isinstance(ty, LockT):
                raise SourceError(target, "a SpinLock cannot be assigned",
                                  f"hold it with `with {ast.unparse(target)}:`")
            if not isinstance(ty, IntT | BoolT) and not (whole and isinstance(
                    ty, StructT | ArrayT)):
                raise SourceError(target, f"cannot update a whole {ty} field this way",
                                  "update its fields one by one")
            return LValue(ty, place)
        if isinstance(target, ast.Subscript):
            base = self.expr(target.value)
            if isinstance(base.type, PacketT):
                index = self.expr(target.slice)
                if isinstance(target.slice, ast.Slice):
                    raise SourceError(target, "cannot assign to a packet slice",
                                      "write fields with ctx.packet.write(offset, value)")
                offset = self.index_value(index, target.slice)
                return LValue(U8_T, None, packet_offset=offset)
            if isinstance(base.type, MapT):
                ref = self.map_subscript(base.type, target, want_ref=True)
                assert isinstance(ref.type, RefT) and ref.value is not None
                if not isinstance(ref.type.target, IntT | BoolT):
                    raise SourceError(target, "assign the fields of a Struct map value",
                                      f"v = {ast.unparse(target)}; v.field = ...")
                assert isinstance(ref.value, Temp)
                return LValue(ref.type.target, Place("ptr", 0, ref.value))
            element, ty = self.element_place(base, target)
            if not isinstance(ty, IntT | BoolT) and not (whole and isinstance(
                    ty, StructT | ArrayT)):
                raise SourceError(target, f"cannot update a whole {ty} element this way")
            return LValue(ty, element)
        raise SourceError(target, f"cannot assign to {ast.unparse(target)}")

    def read_lvalue(self, lvalue: LValue, node: ast.AST) -> Operand:
        if lvalue.packet_offset is not None:
            ptr = self.packet_pointer(lvalue.packet_offset, 1, node)
            t = self.temp()
            self.emit(Load(t, ptr, 0, U8))
            return Operand(U8_T, t)
        if lvalue.ctx_offset is not None:
            t = self.temp()
            self.emit(Load(t, self.context(), lvalue.ctx_offset, _memory_int(lvalue.type).scalar))
            return Operand(lvalue.type, t)
        assert lvalue.place is not None
        return Operand(lvalue.type.value, self.load(lvalue.place, lvalue.type))  # type: ignore

    def write_lvalue(self, lvalue: LValue, value: Operand, node: ast.AST) -> None:
        value_type = lvalue.type.value  # type: ignore[attr-defined]
        converted = self.coerce(value, value_type, node)
        assert converted.value is not None
        if lvalue.packet_offset is not None:
            ptr = self.packet_pointer(lvalue.packet_offset, 1, node, write=True)
            self.emit(Store(ptr, 0, converted.value, U8))
        elif lvalue.ctx_offset is not None:
            mem = _memory_int(lvalue.type)
            self.emit(Store(self.context(), lvalue.ctx_offset, converted.value, mem.scalar))
        else:
            assert lvalue.place is not None
            self.store(lvalue.place, lvalue.type, converted.value)

    # -- expressions -------------------------------------------------------------------------

    def expr(self, node: ast.expr, expected: Type | None = None, statement: bool = False,
             flexible: bool = False) -> Operand:
        """Check and lower ``node``; ``expected`` is the type its use wants. A
        :class:`RangeT` result gets that type (or the default integer type)
        unless the caller is ``flexible``: operators, which type it from the
        other operand, as they do literals."""
        self.node = node
        method = getattr(self, f"expr_{type(node).__name__}", None)
        if method is None:
            message, hint = _UNSUPPORTED_EXPR.get(
                type(node), (f"{type(node).__name__} expressions are not supported", None))
            raise SourceError(node, message, hint)
        if isinstance(node, ast.Call):
            result: Operand = method(node, expected, statement)
        elif isinstance(node, ast.BinOp | ast.UnaryOp | ast.IfExp):
            result = method(node, expected)
        else:
            result = method(node)
        if result.node is None:
            result.node = node
        if isinstance(result.type, RangeT) and not flexible:
            return self.settle(result, expected, node)
        return result

    def settle(self, op: Operand, expected: Type | None, node: ast.AST) -> Operand:
        """A :class:`RangeT` value as a typed one: the expected integer type, else
        the default one (as a literal's)."""
        assert isinstance(op.type, RangeT)
        if isinstance(expected, IntT):
            return self.coerce(op, expected.value, node)
        return Operand(_range_default(op.type), op.value, node=op.node)

    def expr_Constant(self, node: ast.Constant) -> Operand:
        value = node.value
        if isinstance(value, bool):
            return Operand(BOOL_T, int(value))
        if isinstance(value, int):
            return Operand(LiteralT(value), value)
        if value is None:
            return Operand(NoneT())
        if isinstance(value, float):
            raise SourceError(node, "floats are not supported", "use integers")
        if isinstance(value, str):
            return Operand(StrT(value))
        if isinstance(value, bytes):
            return Operand(BytesT(value))
        raise SourceError(node, f"{type(value).__name__} constants are not supported")

    def expr_Name(self, node: ast.Name) -> Operand:
        name = node.id
        if name in self.scope.expired:
            raise self.expired_use(node)
        local = self.scope.locals.get(name)
        if local is not None:
            self.require_assigned(node)
            ty = local.type
            if isinstance(ty, IntT | BoolT | KernelT):
                return Operand(ty, self.load(self.local_place(local), ty))
            if isinstance(ty, RangeT):
                return Operand(ty, self.load(self.local_place(local), _range_memory(ty)))
            if isinstance(ty, StructT | ArrayT):
                return Operand(ty, place=self.local_place(local))
            if isinstance(ty, RefT):
                assert local.temp is not None
                if ty.optional and name in self.scope.state.narrowed:  # type: ignore
                    ty = ty.checked
                if not ty.optional and isinstance(ty.target, IntT | BoolT):
                    return Operand(ty.target.value, self.load(Place("ptr", 0, local.temp),
                                                              ty.target),
                                   extra={"ref": local.temp})
                return Operand(ty, local.temp, extra={"name": name})
            return Operand(ty)
        if name in self.scope.poisoned:
            raise Poisoned
        if name in self.scope.local_names:
            raise SourceError(node, f"{name} is used before it is assigned")
        module = self.module
        if name in module.constants:
            constant = module.constants[name]
            return Operand(constant.type, constant.value)
        if name in module.byte_strings:
            return Operand(BytesT(module.byte_strings[name]))
        if name in module.tuples:
            return Operand(module.tuples[name])
        if name in module.reported:
            raise Poisoned
        if name in module.globals:
            var = module.globals[name]
            place = Place("global", var.offset, map=var.section)
            if isinstance(var.type, IntT | BoolT):
                return Operand(var.type.value, self.load(place, var.type))
            return Operand(var.type, place=place)
        if name in module.maps:
            return Operand(module.maps[name].type)
        if name in module.structs:
            return Operand(TypeT(module.structs[name]))
        if name in module.functions:
            raise SourceError(node, f"function {name} can only be called")
        prelude = module.prelude.get(name)
        if prelude is not None:
            return self.prelude_value(prelude, node)
        if name == "bool":
            return Operand(TypeT(BOOL_T))
        raise self.unknown_name(node, name)

    def unknown_name(self, node: ast.AST, name: str) -> SourceError:
        if name in self.module.userspace:
            return SourceError(node, f"{name} is {self.module.userspace[name]}; kernel code "
                               "cannot use it", "programs and the functions they call use "
                               "pykex names, constants, maps and globals only")
        if name in names.FORBIDDEN_BUILTINS:
            return SourceError(node, f"{name} is not available in extensions",
                               names.FORBIDDEN_BUILTINS[name])
        if name in _PRELUDE_ALL:
            return SourceError(node, f"unknown name {name!r}", f"import it: from pykex import "
                               f"{name}")
        candidates = [*self.scope.locals, *self.module.constants, *self.module.globals,
                      *self.module.maps, *self.module.functions, *self.module.prelude]
        close = difflib.get_close_matches(name, candidates, n=1)
        return SourceError(node, f"unknown name {name!r}",
                           f"did you mean {close[0]!r}?" if close else None)

    def prelude_value(self, prelude: str, node: ast.AST) -> Operand:
        if prelude in names.CONSTANTS:
            value = names.CONSTANTS[prelude]
            return Operand(LiteralT(value), value)
        if prelude in names.SCALARS:
            return Operand(TypeT(names.SCALARS[prelude]))
        raise SourceError(node, f"{prelude} cannot be used as a value here")

    def require_assigned(self, node: ast.Name) -> None:
        state = self.scope.state
        if state is not None and node.id not in state.assigned:
            raise SourceError(node, f"{node.id} may be used before it is assigned",
                              "assign it on every path before this line")

    def expr_Attribute(self, node: ast.Attribute) -> Operand:
        prelude = self.module.prelude_name(node)
        if prelude is not None:
            return self.prelude_value(prelude, node)
        base = self.expr(node.value)
        if isinstance(base.type, KernelT):
            return self.kernel_member(base, node)
        if isinstance(base.type, ContextT):
            if node.attr == "packet":
                if base.type.kind not in names.PACKET_KINDS:
                    raise SourceError(node, f"{base.type} has no packet")
                return Operand(PacketT())
            if base.type.kind == "tracepoint" and self.tracepoint is not None:
                found = tracepoint_string(self.tracepoint, node.attr)
                if found is not None:
                    return self.tracepoint_string(found)
                array = tracepoint_array(self.tracepoint, node.attr)
                if array is not None:
                    return self.tracepoint_array(self.tracepoint.field(node.attr).offset, array)
            offset, ty, _ = self.context_field(base.type, node)
            t = self.temp()
            self.emit(Load(t, self.context(), offset, _memory_int(ty).scalar))
            return Operand(ty.value, t)  # type: ignore[attr-defined]
        if isinstance(base.type, TypeT) and isinstance(base.type.target, StructT | ArrayT):
            if node.attr == "size":
                size = base.type.target.size
                return Operand(LiteralT(size), size)
            raise SourceError(node, f"{base.type.target} has no attribute {node.attr!r}",
                              "the type offers .size")
        place, ty = self.field_place(base, node)
        if isinstance(ty, IntT | BoolT):
            return Operand(ty.value, self.load(place, ty))
        if isinstance(ty, LockT):
            raise SourceError(node, "a SpinLock has no value; it is held with `with "
                              f"{ast.unparse(node)}:`")
        return Operand(ty, place=place)

    def context_field(self, ctx: ContextT, node: ast.Attribute) -> tuple[int, Type, bool]:
        kind = self.kind or ctx.kind
        try:
            found = context_field(kind, node.attr, self.tracepoint)
        except ContextLayoutError as failure:
            raise SourceError(node, str(failure)) from None
        if found is not None:
            return found
        if ctx.kind == "tracepoint" and self.tracepoint is not None:
            if tracepoint_array(self.tracepoint, node.attr) is not None:
                raise SourceError(node, f"{ctx}.{node.attr} is read-only")
            why = unsupported_tracepoint_field(self.tracepoint, node.attr)
            if why is not None:
                raise SourceError(node, why)
            fields = ", ".join(f.name for f in self.tracepoint.event_fields)
            raise SourceError(node, f"tracepoint {self.tracepoint.group}/{self.tracepoint.name} "
                              f"has no field {node.attr!r}", f"its fields: {fields}")
        if ctx.kind == "raw_tracepoint":
            raise SourceError(node, f"{ctx} has no fields", "read arguments with ctx.arg(i)")
        if ctx.kind == "tracepoint":
            raise SourceError(node, "the fields of a tracepoint context are known only inside "
                              "the tracepoint's program")
        raise SourceError(node, f"{ctx} has no field {node.attr!r}")

    def field_place(self, base: Operand, node: ast.Attribute) -> tuple[Place, Type]:
        ty = base.type
        place = base.place
        if isinstance(ty, RefT):
            if ty.optional:
                name = base.extra.get("name", ast.unparse(node.value))
                raise _maybe_none(node.value, str(name))
            ty = ty.target
            assert isinstance(base.value, Temp)
            place = Place("ptr", 0, base.value)
        if not isinstance(ty, StructT):
            if isinstance(ty, MapT):
                raise SourceError(node, f"map {ty.name} has no attribute {node.attr!r}")
            raise SourceError(node, f"{ty} has no fields")
        found = ty.field(node.attr)
        if found is None:
            close = difflib.get_close_matches(node.attr, ty.field_names(), n=1)
            raise SourceError(node, f"{ty.name} has no field {node.attr!r}",
                              f"did you mean {close[0]!r}?" if close else
                              f"its fields: {', '.join(ty.field_names())}")
        assert place is not None
        return place.at(found[1]), found[0]

    def element_place(self, base: Operand, node: ast.Subscript) -> tuple[Place, Type]:
        ty = base.type
        if not isinstance(ty, ArrayT):
            raise SourceError(node, f"cannot index a {ty}")
        assert base.place is not None
        index = self.expr(node.slice)
        stride = _size(ty.element)
        if isinstance(index.type, LiteralT):
            i = index.type.value
            if not 0 <= i < ty.length:
                raise SourceError(node.slice, f"index {i} is out of range for {ty}")
            return base.place.at(i * stride), ty.element
        if not isinstance(index.type, IntT):
            raise SourceError(node.slice, f"an index must be an integer, not {index.type}")
        assert index.value is not None
        if isinstance(index.value, int):  # a typed constant: checked at run time as written
            index = Operand(index.type, self.constant_temp(index.value))
        assert index.value is not None
        return self.array_element(base.place, ty.element, ty.length, index.value, node), \
            ty.element

    def constant_temp(self, value: int) -> Temp:
        t = self.temp()
        self.emit(_assign(t, value))
        return t

    def expr_Subscript(self, node: ast.Subscript) -> Operand:
        base = self.expr(node.value)
        if isinstance(node.slice, ast.Slice) and isinstance(base.type, ArrayT | RefT):
            return self.array_slice(base, node)
        if isinstance(base.type, MapT):
            return self.map_subscript(base.type, node, want_ref=False)
        if isinstance(base.type, PacketT):
            if isinstance(node.slice, ast.Slice):
                return self.packet_slice(node)
            offset = self.index_value(self.expr(node.slice), node.slice)
            ptr = self.packet_pointer(offset, 1, node)
            t = self.temp()
            self.emit(Load(t, ptr, 0, U8))
            return Operand(U8_T, t)
        if isinstance(base.type, BytesT):
            return self.byte_string_index(base.type.value, node)
        if isinstance(base.type, TupleT):
            return self.tuple_index(base.type, node)
        place, ty = self.element_place(base, node)
        if isinstance(ty, IntT | BoolT):
            return Operand(ty.value, self.load(place, ty))
        return Operand(ty, place=place)

    def byte_string_index(self, data: bytes, node: ast.Subscript) -> Operand:
        """``NAME[i]`` of a byte-string constant: a u8, folded when ``i`` is constant,
        else read from the copy of the bytes kept in ``.rodata``."""
        if isinstance(node.slice, ast.Slice):
            parts = (node.slice.lower, node.slice.upper, node.slice.step)
            bounds = [None if part is None else self.constant_value(part) for part in parts]
            if any(part is not None and bound is None for part, bound in zip(
                    parts, bounds, strict=True)) or bounds[2] == 0:
                raise SourceError(node, "byte strings cannot be sliced",
                                  "slice them with constant bounds: NAME[1:3]")
            # Constant bounds: the new byte string as Python slices it.
            return Operand(BytesT(data[bounds[0]:bounds[1]:bounds[2]]))
        index = self.expr(node.slice)
        if isinstance(index.type, LiteralT) or (isinstance(index.type, IntT)
                                                and isinstance(index.value, int)):
            i = index.value
            assert isinstance(i, int)
            if not -len(data) <= i < len(data):
                raise SourceError(node.slice, f"index {i} is out of range for a byte string "
                                  f"of {len(data)} bytes")
            return Operand(U8_T, data[i])
        stored = Operand(ArrayT(U8_T, len(data)),
                         place=Place("global", self.shared.string(data), map=".rodata"))
        place, _ = self.element_place(stored, node)
        return Operand(U8_T, self.load(place, U8_T))

    def tuple_index(self, table: TupleT, node: ast.Subscript) -> Operand:
        """``NAME[i]`` of a tuple constant: folded when ``i`` is a constant, else read
        from its copy in ``.rodata`` (IndexError when ``i`` is out of range). Items
        of an untyped tuple are a :class:`RangeT`, typed by their use."""
        if isinstance(node.slice, ast.Slice):
            raise SourceError(node, "tuple constants cannot be sliced",
                              f"index them: {table.name}[i]")
        index = self.expr(node.slice)
        if isinstance(index.value, int) and isinstance(index.type, LiteralT | IntT):
            item = tuple_item(table, index.value, node.slice)
            return Operand(item.type, item.value)
        memory = IntT(I64) if min(table.values) < 0 else U64_T
        stored = Operand(ArrayT(memory, len(table.values)),
                         place=Place("global", self.shared.table(table.values), map=".rodata"))
        place, _ = self.element_place(stored, node)
        value = self.load(place, memory)
        if table.element is not None:
            return Operand(table.element, value)
        return Operand(RangeT(min(table.values), max(table.values)), value)

    def index_value(self, index: Operand, node: ast.AST) -> Value:
        if isinstance(index.type, LiteralT):
            if index.type.value < 0:
                raise SourceError(node, "negative packet offsets are not supported")
            return index.type.value
        if not isinstance(index.type, IntT):
            raise SourceError(node, f"an offset must be an integer, not {index.type}")
        assert index.value is not None
        return index.value

    # -- operators --------------------------------------------------------------------------

    def expr_BinOp(self, node: ast.BinOp, expected: Type | None) -> Operand:
        if isinstance(node.op, ast.Div):
            raise SourceError(node, "'/' makes floats, which pykex does not have",
                              "use '//' for integer (floor) division")
        if isinstance(node.op, ast.Pow | ast.MatMult):
            left, right = self.expr(node.left), self.expr(node.right)
            if isinstance(node.op, ast.Pow) and isinstance(left.type, LiteralT) and isinstance(
                right.type, LiteralT
            ):
                return self.fold(node, left.type.value, right.type.value)
            raise SourceError(node, f"'{'**' if isinstance(node.op, ast.Pow) else '@'}' is "
                              "supported only between constants")
        left = self.expr(node.left, expected=expected, flexible=True)
        right = self.expr(node.right, expected=expected if not isinstance(
            node.op, ast.LShift | ast.RShift) else None, flexible=True)
        return self.arith(node, node.op, left, right, expected)

    def fold(self, node: ast.BinOp | ast.AugAssign, a: int, b: int) -> Operand:
        op = node.op
        if isinstance(op, ast.FloorDiv | ast.Mod) and b == 0:
            raise SourceError(node, "division by zero")
        if isinstance(op, ast.LShift | ast.RShift) and b < 0:
            raise SourceError(node, "negative shift count")
        if isinstance(op, ast.Pow):
            if b < 0:
                raise SourceError(node, "negative exponent: the result would be a float")
            result = a**b if b < 4096 else 1 << 4096
        elif isinstance(op, ast.LShift) and b > 4096:
            result = 1 << 4096
        else:
            import operator as _op
            fn = {ast.Add: _op.add, ast.Sub: _op.sub, ast.Mult: _op.mul, ast.FloorDiv: _op.floordiv,
                  ast.Mod: _op.mod, ast.BitAnd: _op.and_, ast.BitOr: _op.or_, ast.BitXor: _op.xor,
                  ast.LShift: _op.lshift, ast.RShift: _op.rshift}[type(op)]
            result = fn(a, b)
        return Operand(LiteralT(result), result)

    def arith(self, node: ast.BinOp | ast.AugAssign, op: ast.operator, left: Operand,
              right: Operand, expected: Type | None = None) -> Operand:
        if isinstance(op, ast.Div):
            raise SourceError(node, "'/' makes floats, which pykex does not have",
                              "use '//' for integer (floor) division")
        if type(op) not in _ARITH:
            raise SourceError(node, f"operator {type(op).__name__} is not supported")
        ir_op, verb = _ARITH[type(op)]
        symbol = _SYMBOL[type(op)]
        for side in (left, right):
            if isinstance(side.type, BoolT):
                raise SourceError(node, f"cannot {verb} bool values",
                                  "convert it first, e.g. u8(flag)")
            if not isinstance(side.type, IntT | LiteralT | RangeT):
                raise SourceError(node, f"cannot {verb} {left.type} and {right.type}",
                                  _optional_hint(side.type))
        if isinstance(left.type, LiteralT) and isinstance(right.type, LiteralT):
            return self.fold(node, left.type.value, right.type.value)
        shift = isinstance(op, ast.LShift | ast.RShift)
        if shift:
            if isinstance(right.type, RangeT):
                right = self.settle(right, None, node)
            if isinstance(left.type, LiteralT | RangeT):
                target = expected if isinstance(expected, IntT) else right.type
                if not isinstance(target, IntT):  # a range shifted by a literal amount
                    assert isinstance(left.type, RangeT)
                    target = _range_default(left.type)
                left = self.coerce(left, target.value, node)
            ty = left.type
            assert isinstance(ty, IntT)
            amount = right
            if isinstance(amount.type, LiteralT):
                if amount.type.value < 0:
                    raise SourceError(node, f"negative shift count {amount.type.value}")
                amount_value: Value = min(amount.type.value, 64)
            else:
                assert amount.value is not None and isinstance(amount.type, IntT)
                amount_value = amount.value
                if amount.type.signed:
                    ok = self.label("shift_ok")
                    fail = self.cold_raise("ValueError", "negative shift count {}",
                                           [amount_value], node)
                    self.end_branch("lt", amount_value, 0, True, fail, ok)
                    self.start(ok)
            assert left.value is not None
            t = self.temp()
            self.emit(BinOp(t, ir_op, left.value, amount_value, ty.scalar))
            return Operand(ty, t)
        if isinstance(op, ast.BitAnd | ast.BitOr | ast.BitXor):
            left, right = _twos_complement(left, right), _twos_complement(right, left)
        ty = self.unify([left, right], node, verb, symbol=symbol, expected=expected)
        assert isinstance(ty, IntT)
        a = self.coerce(left, ty, node).value
        b = self.coerce(right, ty, node).value
        assert a is not None and b is not None
        if ir_op in ("div", "mod"):
            if isinstance(b, int):
                if b == 0:
                    raise SourceError(node, "division by zero")
            else:
                ok = self.label("divisor_ok")
                fail = self.cold_raise("ZeroDivisionError",
                                       "integer division or modulo by zero", [], node)
                self.end_branch("eq", b, 0, False, fail, ok)
                self.start(ok)
        t = self.temp()
        self.emit(BinOp(t, ir_op, a, b, ty.scalar))
        return Operand(ty, t)

    def unify(self, operands: list[Operand], node: ast.AST, verb: str, symbol: str = "",
              expected: Type | None = None) -> Type:
        """The common integer type of ``operands`` (widening within one signedness)."""
        typed = [o.type for o in operands if isinstance(o.type, IntT)]
        if not typed:
            ranges = [o.type for o in operands if isinstance(o.type, RangeT)]
            if isinstance(expected, IntT) and all(r.fits(expected.value) for r in ranges):
                return expected.value
            values = [o.type.value for o in operands if isinstance(o.type, LiteralT)]
            values += [v for r in ranges for v in (r.lo, r.hi)]
            if all(names.DEFAULT_INT.fits(v) for v in values):
                return names.DEFAULT_INT
            return U64_T
        result = typed[0].value
        for ty in typed[1:]:
            ty = ty.value
            if ty.signed != result.signed:
                a, b = (str(o.type) for o in operands[:2])
                wide = ty if ty.scalar.bits >= result.scalar.bits else result
                signed = wide if wide.signed else IntT(Scalar(min(wide.scalar.bits * 2, 64),
                                                              True))
                hint = (f"convert one side, e.g. {signed}(a) {symbol} b" if symbol else
                        f"convert one side explicitly, e.g. {signed}(x)")
                raise SourceError(node, f"cannot {verb} {a} and {b}", hint)
            if ty.scalar.bits > result.scalar.bits:
                result = ty
        return result

    def coerce(self, op: Operand, ty: Type, node: ast.AST) -> Operand:
        """``op`` as a value of type ``ty``, or an error saying why it is not one."""
        if isinstance(op.node, ast.AST):
            node = op.node
        if isinstance(ty, IntT):
            ty = ty.value
            if isinstance(op.type, LiteralT):
                if not ty.fits(op.type.value):
                    raise SourceError(node, f"{op.type.value} does not fit in {ty}",
                                      f"{ty} holds {ty.scalar.min}..{ty.scalar.max}")
                return Operand(ty, op.type.value)
            if isinstance(op.type, RangeT):
                if not op.type.fits(ty):
                    raise SourceError(node, f"this {op.type} does not fit in {ty}",
                                      f"convert it explicitly: {ty}(...) (wraps around)")
                return Operand(ty, op.value)
            if isinstance(op.type, IntT):
                have = op.type.value
                if have == ty:
                    return Operand(ty, op.value)
                if have.signed == ty.signed and have.scalar.bits <= ty.scalar.bits:
                    return Operand(ty, op.value)  # temps are already extended to 64 bits
                raise SourceError(node, f"cannot use a {have} value as {ty}",
                                  f"convert it explicitly: {ty}(...) (wraps around)")
            raise SourceError(node, f"expected {ty}, found {_describe(op.type)}",
                              f"convert it: {ty}(...)" if isinstance(op.type, BoolT) else None)
        if isinstance(ty, BoolT):
            if isinstance(op.type, BoolT):
                return op
            raise SourceError(node, f"expected bool, found {_describe(op.type)}",
                              "compare it, e.g. x != 0")
        if isinstance(ty, StructT | ArrayT):
            if isinstance(op.type, StringT) and isinstance(ty, ArrayT) and ty.element == U8_T:
                return self.read_string(op, ty)
            if isinstance(op.type, RefT) and not op.type.optional and op.type.target == ty:
                assert isinstance(op.value, Temp)
                # The map is remembered: a function given the value may take its lock.
                owner = None if op.type.reserved else op.type.map
                return Operand(ty, place=Place("ptr", 0, op.value, owner))
            if isinstance(op.type, SliceT) and isinstance(ty, ArrayT) and (
                    op.type.length == ty.length and op.type.element == ty.element):
                return self.slice_value(op, ty, node)
            if op.type != ty:
                raise SourceError(node, f"expected {ty}, found {_describe(op.type)}")
            return op
        if op.type != ty:
            raise SourceError(node, f"expected {ty}, found {_describe(op.type)}")
        return op

    def materialise(self, op: Operand, node: ast.AST) -> Operand:
        """A literal as a typed value (its default type); others unchanged."""
        if isinstance(op.type, LiteralT):
            return self.coerce(op, self.natural_type(op, node), node)  # type: ignore[arg-type]
        return op

    def expr_UnaryOp(self, node: ast.UnaryOp, expected: Type | None) -> Operand:
        if isinstance(node.op, ast.Not):
            return self.condition_value(node)
        operand = self.expr(node.operand, expected=expected)
        if isinstance(operand.type, LiteralT):
            v = operand.type.value
            result = {ast.USub: -v, ast.UAdd: v, ast.Invert: ~v}[type(node.op)]
            return Operand(LiteralT(result), result)
        if not isinstance(operand.type, IntT):
            raise SourceError(node, f"bad operand for unary operator: {operand.type}")
        if isinstance(node.op, ast.UAdd):
            return operand
        t = self.temp()
        assert operand.value is not None
        op = "neg" if isinstance(node.op, ast.USub) else "invert"
        self.emit(UnOp(t, op, operand.value, operand.type.scalar))
        return Operand(operand.type, t)

    def expr_Compare(self, node: ast.Compare) -> Operand:
        return self.condition_value(node)

    def expr_BoolOp(self, node: ast.BoolOp) -> Operand:
        for value in node.values:
            if not self.is_condition_like(value):
                word = "and" if isinstance(node.op, ast.And) else "or"
                raise SourceError(node, f"`{word}` of integers returns one of them in Python; "
                                  "pykex allows and/or only on conditions here",
                                  "compare explicitly, e.g. (a != 0) and (b != 0)")
        return self.condition_value(node)

    def is_condition_like(self, node: ast.expr) -> bool:
        """Whether ``node`` is a bool by its form (comparisons, not, True/False ...)."""
        if isinstance(node, ast.Compare | ast.BoolOp):
            return True
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return True
        if isinstance(node, ast.Name):
            local = self.scope.locals.get(node.id)
            return local is not None and isinstance(local.type, BoolT)
        return False

    def expr_IfExp(self, node: ast.IfExp, expected: Type | None) -> Operand:
        then, orelse, after = self.label("ifexp"), self.label("ifexp_else"), self.label("ifexp_end")
        on_true, on_false = self.branch_on(node.test, then, orelse)
        slot = Place("frame", self.alloc(8))
        self.start(then)
        self.scope.state = on_true
        a = self.branch_value(node.body, expected)
        a_block = self.block
        self.start(orelse)
        self.scope.state = on_false
        b = self.branch_value(node.orelse, expected)
        ty: Type
        if isinstance(a.type, LiteralT) and isinstance(b.type, LiteralT) and _one_type_holds(
                a.type.value, b.type.value):
            # Two literals: like a literal, the value takes its type from its use.
            ty = RangeT(min(a.type.value, b.type.value), max(a.type.value, b.type.value))
        else:
            a, b = self.materialise(a, node.body), self.materialise(b, node.orelse)
            if isinstance(a.type, IntT) and isinstance(b.type, IntT):
                ty = self.unify([a, b], node, "choose between")
            elif a.type == b.type and isinstance(a.type, BoolT):
                ty = BOOL_T
            else:
                raise SourceError(node, f"both branches must be integers or bools, found "
                                  f"{a.type} and {b.type}")
        assert b.value is not None and a.value is not None
        self.store(slot, _slot_type(ty), b.value)
        self.jump(after)
        self.block = a_block
        self._cache = {}
        self.scope.state = on_true
        self.store(slot, _slot_type(ty), a.value)
        self.jump(after)
        self.start(after)
        self.scope.state = join(on_true, on_false)
        return Operand(ty, self.load(slot, _slot_type(ty)))

    def branch_value(self, node: ast.expr, expected: Type | None) -> Operand:
        """A branch of ``a if c else b``: literals take the expected integer type."""
        value = self.expr(node, expected=expected)
        if isinstance(value.type, LiteralT) and isinstance(expected, IntT):
            return self.coerce(value, expected.value, node)
        return value

    def expr_NamedExpr(self, node: ast.NamedExpr) -> Operand:
        return self.assign_name(node.target, node.value, None)

    # -- conditions ---------------------------------------------------------------------------

    def condition_value(self, node: ast.expr) -> Operand:
        """A condition as a bool value (0 or 1) in a temp."""
        simple = self.simple_compare(node)
        if simple is not None:
            return simple
        then, orelse, after = self.label("true"), self.label("false"), self.label("cond_end")
        slot = Place("frame", self.alloc(8))
        on_true, on_false = self.branch_on(node, then, orelse)
        self.start(then)
        self.store(slot, BOOL_T, 1)
        self.jump(after)
        self.start(orelse)
        self.store(slot, BOOL_T, 0)
        self.jump(after)
        self.start(after)
        self.scope.state = join(on_true, on_false)
        return Operand(BOOL_T, self.load(slot, BOOL_T))

    def simple_compare(self, node: ast.expr) -> Operand | None:
        """A single comparison of integers, computed without branches."""
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1
                and type(node.ops[0]) in _COMPARE):
            return None
        left = self.expr(node.left, flexible=True)
        right = self.expr(node.comparators[0], flexible=True)
        if _is_run(left.type) or _is_run(right.type):
            return self.slice_compare(node, left, right)
        a, b, signed = self.compare_operands(node, left, right)
        op = _COMPARE[type(node.ops[0])]
        if isinstance(a, int) and isinstance(b, int):
            return Operand(BOOL_T, int(_constant_compare(op, a, b, signed)))
        t = self.temp()
        self.emit(Compare(t, op, a, b, signed))
        return Operand(BOOL_T, t)

    def compare_operands(self, node: ast.AST, left: Operand, right: Operand
                         ) -> tuple[Value, Value, bool]:
        if isinstance(left.type, BoolT) and isinstance(right.type, BoolT):
            assert left.value is not None and right.value is not None
            return left.value, right.value, False
        for side in (left, right):
            if not isinstance(side.type, IntT | LiteralT | RangeT):
                raise SourceError(node, f"cannot compare {_describe(left.type)} and "
                                  f"{_describe(right.type)}", _optional_hint(side.type))
        if isinstance(left.type, LiteralT) and isinstance(right.type, LiteralT):
            return left.type.value, right.type.value, True
        ty = self.unify([left, right], node, "compare")
        assert isinstance(ty, IntT)
        a, b = self.coerce(left, ty, node).value, self.coerce(right, ty, node).value
        assert a is not None and b is not None
        return a, b, ty.signed

    def branch_on(self, node: ast.expr, then: str, orelse: str) -> tuple[State, State]:
        """Jump to ``then`` or ``orelse`` on ``node``'s truth; the states on each edge."""
        self.node = node
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            other_states: list[State] = []
            for i, value in enumerate(node.values):
                last = i == len(node.values) - 1
                nxt = self.label("and" if is_and else "or")
                if is_and:
                    on_true, on_false = self.branch_on(value, then if last else nxt, orelse)
                    other_states.append(on_false)
                    if not last:
                        self.start(nxt)
                        self.scope.state = on_true
                else:
                    on_true, on_false = self.branch_on(value, then, orelse if last else nxt)
                    other_states.append(on_true)
                    if not last:
                        self.start(nxt)
                        self.scope.state = on_false
            joined = join(*other_states)
            assert joined is not None
            return (on_true, joined) if is_and else (joined, on_false)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            on_true, on_false = self.branch_on(node.operand, orelse, then)
            return on_false, on_true
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(
            node.ops[0], ast.Is | ast.IsNot
        ):
            return self.branch_none_test(node, then, orelse)
        if isinstance(node, ast.Compare) and len(node.ops) > 1:
            return self.branch_chain(node, then, orelse)
        if _is_literal_membership(node) or self.is_tuple_membership(node):
            return self.branch_on(self.expand_literal_membership(node), then, orelse)
        if isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            value = self.membership(node)
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in _COMPARE:
            left = self.expr(node.left, flexible=True)
            right = self.expr(node.comparators[0], flexible=True)
            if _is_run(left.type) or _is_run(right.type):
                value = self.slice_compare(node, left, right)
            else:
                a, b, signed = self.compare_operands(node, left, right)
                op = _COMPARE[type(node.ops[0])]
                if isinstance(a, int) and isinstance(b, int):
                    value = Operand(BOOL_T, int(_constant_compare(op, a, b, signed)))
                else:
                    state = self.scope.state
                    assert state is not None
                    self.end_branch(op, a, b, signed, then, orelse)
                    return state, state
        else:
            value = self.expr(node)
        if isinstance(value.type, RefT) and value.type.optional:
            raise SourceError(node, "test an optional reference with `is not None`",
                              f"if {ast.unparse(node)} is not None:")
        if isinstance(value.type, LiteralT):
            value = Operand(BOOL_T, int(value.type.value != 0))
        if not isinstance(value.type, IntT | BoolT):
            raise SourceError(node, f"a {_describe(value.type)} cannot be used as a condition")
        assert value.value is not None
        state = self.scope.state
        assert state is not None
        if isinstance(value.value, int):
            self.jump(then if value.value else orelse)
            unreachable = State(frozenset(self.scope.local_names),
                                frozenset(self.scope.local_names))
            return (state, unreachable) if value.value else (unreachable, state)
        self.end_branch("ne", value.value, 0, False, then, orelse)
        return state, state

    def branch_none_test(self, node: ast.Compare, then: str, orelse: str) -> tuple[State, State]:
        subject, other = node.left, node.comparators[0]
        if isinstance(subject, ast.Constant) and subject.value is None:
            subject, other = other, subject
        if not (isinstance(other, ast.Constant) and other.value is None):
            raise SourceError(node, "`is` compares with None only", "use == for values")
        op = self.expr(subject)
        if not isinstance(op.type, RefT):
            raise SourceError(node, f"a {_describe(op.type)} is never None")
        name = subject.target.id if isinstance(subject, ast.NamedExpr) else (
            subject.id if isinstance(subject, ast.Name) else None)
        state = self.scope.state
        assert state is not None and op.value is not None
        narrowed = state.narrow(frozenset({name})) if name else state
        is_not = isinstance(node.ops[0], ast.IsNot)
        self.end_branch("ne" if is_not else "eq", op.value, 0, False, then, orelse)
        return (narrowed, state) if is_not else (state, narrowed)

    def branch_chain(self, node: ast.Compare, then: str, orelse: str) -> tuple[State, State]:
        left = self.expr(node.left, flexible=True)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _COMPARE:
                raise SourceError(node, "chained comparisons use <, <=, >, >=, ==, != only")
            right = self.expr(comparator, flexible=True)
            if not isinstance(right.type, LiteralT) and right.value is not None and isinstance(
                right.type, IntT | RangeT
            ):
                slot = Place("frame", self.alloc(8))
                self.store(slot, _slot_type(right.type), right.value)
                kept = Operand(right.type, slot.offset, extra={"slot": slot})
            else:
                kept = right
            a, b, signed = self.compare_operands(node, left, right)
            nxt = self.label("chain")
            state = self.scope.state
            self.end_branch(_INVERSE[_COMPARE[type(op)]], a, b, signed, orelse, nxt)
            self.start(nxt)
            self.scope.state = state
            if "slot" in kept.extra:
                slot = kept.extra["slot"]
                assert isinstance(slot, Place)
                left = Operand(kept.type, self.load(slot, _slot_type(kept.type)))
            else:
                left = kept
        state = self.scope.state
        assert state is not None
        self.jump(then)
        return state, state

    def expand_literal_membership(self, node: ast.Compare) -> ast.expr:
        """``x in (a, b)`` as ``x == a or x == b``; ``not in`` as ``!=`` joined by ``and``."""
        left = node.left
        if not _is_plain_read(left):
            raise SourceError(left, "the value tested with `in (...)` is read once per option",
                              "assign it to a local first")
        container = node.comparators[0]
        if isinstance(container, ast.Name):  # a tuple constant: its items
            options: list[ast.expr] = [ast.copy_location(ast.Constant(v), container)
                                       for v in self.module.tuples[container.id].values]
        else:
            options = container.elts  # type: ignore[attr-defined]
        is_in = isinstance(node.ops[0], ast.In)
        if not options:
            return ast.copy_location(ast.Constant(not is_in), node)
        tests: list[ast.expr] = [
            ast.copy_location(ast.Compare(left, [ast.Eq() if is_in else ast.NotEq()], [o]), o)
            for o in options
        ]
        if len(tests) == 1:
            return tests[0]
        return ast.copy_location(ast.BoolOp(ast.Or() if is_in else ast.And(), tests), node)

    def is_tuple_membership(self, node: ast.expr) -> bool:
        """``x in NAME`` (or ``not in``) with ``NAME`` a tuple constant."""
        return (isinstance(node, ast.Compare) and len(node.ops) == 1
                and isinstance(node.ops[0], ast.In | ast.NotIn)
                and isinstance(node.comparators[0], ast.Name)
                and node.comparators[0].id in self.module.tuples
                and node.comparators[0].id not in self.scope.local_names)

    def membership(self, node: ast.Compare) -> Operand:
        if _is_literal_membership(node) or self.is_tuple_membership(node):
            return self.condition_value(self.expand_literal_membership(node))
        container = self.expr(node.comparators[0])
        if not isinstance(container.type, MapT):
            raise SourceError(node, "`in` tests map membership only: key in m")
        mt = container.type
        if not mt.is_keyed:
            raise SourceError(node, f"a {mt.kind} has no keys code can test")
        ref = self.map_lookup(mt, node.left)
        t = self.temp()
        op = "ne" if isinstance(node.ops[0], ast.In) else "eq"
        self.emit(Compare(t, op, ref, 0, False))
        return Operand(BOOL_T, t)

    # -- maps -------------------------------------------------------------------------------

    def key_pointer(self, mt: MapT, key_node: ast.expr) -> tuple[Temp, list[Value]]:
        """A pointer to ``key`` in memory (as helpers want it), and the key's
        value for messages when it is a scalar."""
        assert mt.key is not None
        key = self.coerce(self.expr(key_node, expected=mt.key), mt.key, key_node)
        return self.data_pointer(key, mt.key)

    def data_pointer(self, value: Operand, ty: Type) -> tuple[Temp, list[Value]]:
        if isinstance(ty, IntT | BoolT):
            assert value.value is not None
            slot = Place("frame", self.alloc(8))
            self.store(slot, ty, value.value)
            return self.pointer_to(slot), [value.value]
        assert value.place is not None
        return self.pointer_to(value.place), []

    def map_lookup(self, mt: MapT, key_node: ast.expr) -> Temp:
        key_ptr, _ = self.key_pointer(mt, key_node)
        m = self.temp("map", pointer=True)
        self.emit(MapRef(m, mt.name))
        ref = self.temp("ref", pointer=True)
        self.emit(Call(ref, "bpf_map_lookup_elem", [m, key_ptr]))
        return ref

    def map_subscript(self, mt: MapT, node: ast.Subscript, want_ref: bool) -> Operand:
        if not mt.is_keyed:
            raise SourceError(node, f"a {mt.kind} cannot be indexed in code",
                              "user space reads it; code uses its methods")
        if isinstance(node.slice, ast.Slice):
            raise SourceError(node, "maps cannot be sliced")
        assert mt.key is not None and mt.value is not None
        key = self.coerce(self.expr(node.slice, expected=mt.key), mt.key, node.slice)
        key_ptr, key_args = self.data_pointer(key, mt.key)
        m = self.temp("map", pointer=True)
        self.emit(MapRef(m, mt.name))
        ref = self.temp("ref", pointer=True)
        self.emit(Call(ref, "bpf_map_lookup_elem", [m, key_ptr]))
        ok = self.label("found")
        if mt.is_array:
            fail = self.cold_raise("IndexError", f"index {{}} out of range for map {mt.name}",
                                   key_args, node)
        else:
            fail = self.cold_raise("KeyError", _key_message(mt, key_args), key_args, node)
        self.end_branch("eq", ref, 0, False, fail, ok)
        self.start(ok)
        ref_type = RefT(mt.value, mt.name)
        if isinstance(mt.value, IntT | BoolT) and not want_ref:
            return Operand(mt.value.value, self.load(Place("ptr", 0, ref), mt.value),
                           extra={"ref": ref})
        return Operand(ref_type, ref)

    def map_store(self, mt: MapT, target: ast.Subscript, value_node: ast.expr) -> None:
        if not mt.is_keyed:
            raise SourceError(target, f"a {mt.kind} cannot be indexed in code",
                              "user space fills it; code uses its methods")
        assert mt.key is not None and mt.value is not None
        key = self.coerce(self.expr(target.slice, expected=mt.key), mt.key, target.slice)
        value = self.coerce(self.expr(value_node, expected=mt.value), mt.value, value_node)
        key_ptr, key_args = self.data_pointer(key, mt.key)
        value_ptr, _ = self.data_pointer(value, mt.value)
        self.map_update(mt, key_ptr, value_ptr, key_args, BPF_ANY, target)

    def map_update(self, mt: MapT, key_ptr: Temp, value_ptr: Temp, key_args: list[Value],
                   flags: int, node: ast.AST) -> None:
        m = self.temp("map", pointer=True)
        self.emit(MapRef(m, mt.name))
        err = self.temp("err")
        self.emit(Call(err, "bpf_map_update_elem", [m, key_ptr, value_ptr, flags]))
        ok = self.label("stored")
        if mt.is_array:
            fail = self.cold_raise("IndexError", f"index {{}} out of range for map {mt.name}",
                                   key_args, node)
        else:
            fail = self.cold_raise("MemoryError", f"map {mt.name} is full (error {{}})",
                                   [err], node)
        self.end_branch("ne", err, 0, True, fail, ok)
        self.start(ok)

    def map_method(self, mt: MapT, node: ast.Call, method: str) -> Operand:
        if mt.kind in ("RingBuffer", "PerfEventArray"):
            if method == "reserve" and mt.kind == "RingBuffer":
                raise SourceError(node, f"{mt.name}.reserve() is used only as a with statement",
                                  f"`with {mt.name}.reserve(T) as r:` submits the record at "
                                  "the end of the block and discards it on an exception")
            if method != "output":
                hint = ("use rb.output(value), or `with rb.reserve(T) as r:`"
                        if mt.kind == "RingBuffer" else "use events.output(value)")
                raise SourceError(node, f"{mt.kind} has no method {method!r}", hint)
            return self.output_record(mt, node)
        if not mt.is_keyed:
            raise SourceError(node.func, f"{mt.kind} {mt.name} has no methods",
                              "a StackTrace is filled by ctx.get_stackid(), a DevMap read by "
                              "redirect_map(), a ProgramArray jumped through by tail_call()")
        if method == "get":
            if len(node.args) == 2 and not node.keywords:
                raise SourceError(
                    node, f"{mt.name}.get(key) takes no default: it returns a reference to "
                    "the value, or None",
                    f"test it (`if (v := {mt.name}.get(k)) is not None:`), or insert the "
                    f"default with {mt.name}.setdefault(k, 0)")
            _expect_args(node, 1, f"{mt.name}.get(key)")
            assert mt.value is not None
            return Operand(RefT(mt.value, mt.name, optional=True),
                           self.map_lookup(mt, node.args[0]))
        if method == "setdefault":
            _expect_args(node, 2, f"{mt.name}.setdefault(key, value)")
            if mt.is_array:
                raise SourceError(node, f"{mt.kind} entries always exist", f"use {mt.name}[i]")
            assert mt.key is not None and mt.value is not None
            key = self.coerce(self.expr(node.args[0], expected=mt.key), mt.key, node.args[0])
            default = self.coerce(self.expr(node.args[1], expected=mt.value), mt.value,
                                  node.args[1])
            key_ptr, _ = self.data_pointer(key, mt.key)
            m = self.temp("map", pointer=True)
            self.emit(MapRef(m, mt.name))
            ref = self.temp("ref", pointer=True)
            self.emit(Call(ref, "bpf_map_lookup_elem", [m, key_ptr]))
            found, missing = self.label("present"), self.label("absent")
            self.end_branch("ne", ref, 0, False, found, missing)
            self.start(missing)
            value_ptr, _ = self.data_pointer(default, mt.value)
            key_ptr2 = self.pointer_to_key(key, mt)
            m2 = self.temp("map", pointer=True)
            self.emit(MapRef(m2, mt.name))
            err = self.temp("err")
            # NOEXIST: another CPU may have inserted it meanwhile; either way look it up again.
            self.emit(Call(err, "bpf_map_update_elem", [m2, key_ptr2, value_ptr, BPF_NOEXIST]))
            m3 = self.temp("map", pointer=True)
            self.emit(MapRef(m3, mt.name))
            self.emit(Call(ref, "bpf_map_lookup_elem", [m3, self.pointer_to_key(key, mt)]))
            fail = self.cold_raise("MemoryError", f"map {mt.name} is full", [], node)
            self.end_branch("eq", ref, 0, False, fail, found)
            self.start(found)
            if isinstance(mt.value, IntT | BoolT):
                return Operand(mt.value.value, self.load(Place("ptr", 0, ref), mt.value),
                               extra={"ref": ref})
            return Operand(RefT(mt.value, mt.name), ref)
        raise SourceError(node.func, f"{mt.kind} has no method {method!r}",
                          "maps offer m[k], m.get(k), m.setdefault(k, v), k in m, del m[k]")

    def pointer_to_key(self, key: Operand, mt: MapT) -> Temp:
        ptr, _ = self.data_pointer(key, mt.key)  # type: ignore[arg-type]
        return ptr

    # -- packets ------------------------------------------------------------------------------

    def packet_pointer(self, offset: Value, size: int, node: ast.AST, write: bool = False
                       ) -> Temp:
        """A pointer to ``size`` checked bytes of the packet at ``offset``.

        Socket filters cannot reach packet memory directly: their reads copy the
        bytes into the frame with ``bpf_skb_load_bytes``, which checks the bounds.
        """
        if write and self.kind not in (None, *names.WRITABLE_PACKET_KINDS):
            raise SourceError(node, f"{self.kind} programs can only read the packet")
        length = self.temp("len")
        if self.kind == "socket_filter":
            length_load = Load(length, self.context(), SKB_LEN_OFFSET, U32)
            fail = self.cold_raise("IndexError", "packet offset {} + {} > length {}",
                                   [offset, size, length], node, before=[length_load])
            slot = Place("frame", self.alloc(size))
            copy = self.pointer_to(slot)
            err = self.temp("err")
            self.emit(Call(err, "bpf_skb_load_bytes", [self.context(), offset, copy, size]))
            ok = self.label("loaded")
            self.end_branch("ne", err, 0, False, fail, ok)
            self.start(ok)
            return self.pointer_to(slot)
        fail = self.cold_raise(
            "IndexError", "packet offset {} + {} > length {}", [offset, size, length], node,
            before=[PacketLen(length)])
        ptr = self.temp("pkt", pointer=True)
        self.emit(PacketPtr(ptr, offset, size, fail))
        return ptr

    def packet_length(self) -> Temp:
        t = self.temp("len")
        if self.kind == "socket_filter":
            self.emit(Load(t, self.context(), SKB_LEN_OFFSET, U32))
        else:
            self.emit(PacketLen(t))
        return t

    def packet_method(self, node: ast.Call, method: str) -> Operand:
        if method == "read":
            _expect_args(node, 2, "ctx.packet.read(offset, Type)")
            offset = self.index_value(self.expr(node.args[0]), node.args[0])
            kind = self.expr(node.args[1])
            if not isinstance(kind.type, TypeT) or not kind.type.target.is_data:
                raise SourceError(node.args[1], "the second argument of read() is a type",
                                  "e.g. ctx.packet.read(0, Ethernet) or read(12, be16)")
            ty = kind.type.target
            size = _size(ty)
            ptr = self.packet_pointer(offset, size, node)
            if isinstance(ty, IntT | BoolT):
                t = self.temp()
                mem = _memory_int(ty)
                self.emit(Load(t, ptr, 0, mem.scalar, big_endian=_big_endian(ty)))
                return Operand(ty.value, t)
            slot = Place("frame", self.alloc(size))
            fp, off = self.base(slot)
            self.emit(MemCopy(fp, off, ptr, 0, size))
            return Operand(ty, place=slot, fresh=True)
        if method == "write":
            if len(node.args) not in (2, 3) or node.keywords:
                raise SourceError(node, "write takes (offset, value) or (offset, value, Type)")
            offset = self.index_value(self.expr(node.args[0]), node.args[0])
            value = self.expr(node.args[1])
            if len(node.args) == 3:
                kind = self.expr(node.args[2])
                if not isinstance(kind.type, TypeT) or not kind.type.target.is_data:
                    raise SourceError(node.args[2], "the third argument of write() is a type")
                memory = kind.type.target
                value = self.coerce(value, memory.value if isinstance(memory, IntT) else memory,
                                    node.args[1])
            else:
                if isinstance(value.type, LiteralT):
                    raise SourceError(node.args[1], "the size of an int literal is unknown",
                                      "give it a type: ctx.packet.write(off, u8(1))")
                if isinstance(value.type, RefT):
                    value = self.coerce(value, value.type.target, node.args[1])
                memory = value.type
            if not memory.is_data:
                raise SourceError(node.args[1], f"cannot write a {_describe(value.type)}")
            size = _size(memory)
            ptr = self.packet_pointer(offset, size, node, write=True)
            if isinstance(memory, IntT | BoolT):
                assert value.value is not None
                self.emit(Store(ptr, 0, value.value, _memory_int(memory).scalar,
                                big_endian=_big_endian(memory)))
            else:
                assert value.place is not None
                src, soff = self.base(value.place)
                self.emit(MemCopy(ptr, 0, src, soff, size))
            return Operand(NoneT())
        raise SourceError(node.func, f"the packet has no method {method!r}",
                          "use read, write, len(ctx.packet), ctx.packet[i] or slices")

    # -- calls --------------------------------------------------------------------------------

    def expr_Call(self, node: ast.Call, expected: Type | None, statement: bool) -> Operand:
        func = node.func
        if isinstance(func, ast.Attribute):
            prelude = self.module.prelude_name(func)
            if prelude is None:
                base = self.expr(func.value)
                return self.method_call(base, node, func.attr)
        else:
            prelude = None
        if isinstance(func, ast.Name):
            name = func.id
            if name in self.module.functions and name not in self.scope.local_names:
                return self.inline(self.module.functions[name], node)
            if name in self.module.structs:
                return self.construct(self.module.structs[name], node)
            if name in self.module.reported:
                raise Poisoned
            prelude = self.module.prelude.get(name)
            if prelude is None and name not in self.scope.locals:
                return self.builtin_call(name, node)
        if prelude is None:
            raise SourceError(node.func, f"{ast.unparse(node.func)} is not callable")
        return self.prelude_call(prelude, node, expected)

    def builtin_call(self, name: str, node: ast.Call) -> Operand:
        if name == "print":
            return self.print_call(node)
        if name == "len":
            _expect_args(node, 1, "len(ctx.packet)")
            target = self.expr(node.args[0])
            if isinstance(target.type, PacketT):
                return Operand(U32_T, self.packet_length())
            if isinstance(target.type, ArrayT):
                return Operand(LiteralT(target.type.length), target.type.length)
            if isinstance(target.type, SliceT):
                return self.run_length(target)
            if isinstance(target.type, BytesT):
                size = len(target.type.value)
                return Operand(LiteralT(size), size)
            if isinstance(target.type, TupleT):
                size = len(target.type.values)
                return Operand(LiteralT(size), size)
            raise SourceError(node.args[0], f"len() of a {_describe(target.type)} is not "
                              "supported")
        if name == "bool":
            _expect_args(node, 1, "bool(x)")
            return self.condition_value(node.args[0])
        if name == "range":
            raise SourceError(node, "range() is only allowed as the iterable of a for loop")
        if name == "ord":
            code = ord_constant(node)
            return Operand(LiteralT(code), code)
        if name == "int":
            raise SourceError(node, "int has no fixed width",
                              "convert with u8, u16, u32, u64, i8, i16, i32 or i64")
        if name in names.EXCEPTIONS:
            raise SourceError(node, f"{name} can only be raised")
        if name in ("min", "max", "abs"):
            raise SourceError(node, f"{name}() is not supported yet",
                              "write it with if/else")
        raise self.unknown_name(node.func, name)

    def prelude_call(self, prelude: str, node: ast.Call, expected: Type | None) -> Operand:
        if prelude in names.CONVERSIONS:
            _expect_args(node, 1, f"{prelude}(x)")
            target = names.CONVERSIONS[prelude]
            if isinstance(target, BoolT):
                return self.condition_value(node.args[0])
            assert isinstance(target, IntT)
            target = target.value
            value = self.expr(node.args[0], expected=target, flexible=True)
            if isinstance(value.type, RangeT):
                if value.type.fits(target):
                    return Operand(target, value.value)
                value = Operand(_range_default(value.type), value.value)
            if isinstance(value.type, LiteralT):
                if not target.fits(value.type.value):
                    raise SourceError(node.args[0], f"{value.type.value} does not fit in "
                                      f"{target}", f"{target} holds {target.scalar.min}.."
                                      f"{target.scalar.max}; use {target}({value.type.value} "
                                      f"& {target.scalar.mask:#x}) to wrap")
                return Operand(target, value.type.value)
            if (isinstance(value.type, KernelT) and value.type.pointer) or (
                    isinstance(value.type, StringT) and isinstance(value.value, Temp)
                    and not value.value.pointer):
                value = Operand(U64_T, value.value)  # the address, e.g. to compare with 0
            if not isinstance(value.type, IntT | BoolT):
                raise SourceError(node.args[0], f"cannot convert {_describe(value.type)} to "
                                  f"{target}")
            assert value.value is not None
            if value.type == target:
                return Operand(target, value.value)
            t = self.temp()
            self.emit(Cast(t, value.value, target.scalar))
            return Operand(target, t)
        if prelude in names.HELPERS:
            _expect_args(node, 0, f"{prelude}()")
            helper, ty = names.HELPERS[prelude]
            t = self.temp()
            self.emit(Call(t, helper, []))
            if prelude == "current_pid":
                pid = self.temp()
                self.emit(BinOp(pid, "shr", t, 32, U64))
                return Operand(ty, pid)
            if ty != U64_T:
                narrowed = self.temp()
                self.emit(Cast(narrowed, t, ty.scalar))  # type: ignore[attr-defined]
                return Operand(ty, narrowed)
            return Operand(ty, t)
        if prelude in names.BYTE_SWAPS:
            _expect_args(node, 1, f"{prelude}(x)")
            ty = names.BYTE_SWAPS[prelude]
            assert isinstance(ty, IntT)
            value = self.coerce(self.expr(node.args[0], expected=ty), ty, node.args[0])
            return self.byte_swap(value, ty)
        if prelude in KERNEL_FUNCTIONS:
            return self.kernel_function(prelude, node)
        if prelude == "atomic_add":
            return self.atomic_add(node)
        if prelude == "print":
            return self.print_call(node)
        if prelude in names.CONTEXTS or prelude in names.MAP_KINDS:
            raise SourceError(node, f"{prelude} objects are declared at module level or "
                              "given to programs; they cannot be created in a function")
        raise SourceError(node, f"{prelude} cannot be called here")

    def byte_swap(self, value: Operand, ty: IntT) -> Operand:
        assert value.value is not None
        if isinstance(value.value, int):
            swapped = int.from_bytes(value.value.to_bytes(ty.size, "little"), "big")
            return Operand(ty, swapped)
        result: Value = 0
        for i in range(ty.size):
            byte = self.temp()
            self.emit(BinOp(byte, "shr", value.value, 8 * i, U64))
            masked = self.temp()
            self.emit(BinOp(masked, "and", byte, 0xFF, U64))
            moved = self.temp()
            self.emit(BinOp(moved, "shl", masked, 8 * (ty.size - 1 - i), U64))
            if result == 0:
                result = moved
            else:
                acc = self.temp()
                self.emit(BinOp(acc, "or", result, moved, ty.scalar))
                result = acc
        return Operand(ty, result)

    def atomic_add(self, node: ast.Call) -> Operand:
        _expect_args(node, 2, "atomic_add(ref.field, amount)")
        target = node.args[0]
        var = self.module.globals.get(target.id) if isinstance(target, ast.Name) and (
            target.id not in self.scope.local_names) else None
        if var is not None:
            # A scalar global is a place too (its slot in .bss or .data).
            lvalue = LValue(var.type, Place("global", var.offset, map=var.section))
        else:
            lvalue = self.lvalue(target)
        if lvalue.place is None or lvalue.place.kind == "frame":
            raise SourceError(target, "atomic_add works on fields of map values and globals",
                              "for a local, write x += n")
        ty = lvalue.type
        if not isinstance(ty, IntT) or ty.big_endian or ty.size not in (4, 8):
            raise SourceError(target, f"atomic_add needs a 32- or 64-bit host-order field, "
                              f"not {ty}")
        amount = self.coerce(self.expr(node.args[1], expected=ty), ty.value, node.args[1])
        base, offset = self.base(lvalue.place)
        assert amount.value is not None
        self.emit(AtomicAdd(base, offset, amount.value, ty.scalar))
        return Operand(NoneT())

    def print_call(self, node: ast.Call) -> Operand:
        if node.keywords:
            raise SourceError(node.keywords[0], "print() takes no keyword arguments in "
                              "extensions")
        text, values = self.message_parts(node.args, "%")
        if len(values) > 3:
            raise SourceError(node, f"print() can show at most 3 values per call, got "
                              f"{len(values)}", "split it into several print() calls")
        data = text.encode()
        offset = self.shared.string(data)
        fmt = self.temp("fmt", pointer=True)
        self.emit(GlobalAddr(fmt, ".rodata", offset))
        self.emit(Call(self.temp("err"), "bpf_trace_printk", [fmt, len(data) + 1, *values]))
        return Operand(NoneT())

    def method_call(self, base: Operand, node: ast.Call, method: str) -> Operand:
        if isinstance(base.type, MapT):
            return self.map_method(base.type, node, method)
        if isinstance(base.type, PacketT):
            return self.packet_method(node, method)
        if isinstance(base.type, ContextT) and method == "get_stackid":
            return self.get_stackid(node)
        if isinstance(base.type, ContextT) and base.type.kind == "kprobe":
            return self.probe_method(node, method)
        if isinstance(base.type, ContextT) and base.type.kind == "raw_tracepoint":
            if method != "arg":
                raise SourceError(node.func, f"RawTracepointContext has no method {method!r}",
                                  "use ctx.arg(i)")
            _expect_args(node, 1, "ctx.arg(i)")
            index = self.expr(node.args[0])
            if not isinstance(index.type, LiteralT) or not 0 <= index.type.value < 12:
                raise SourceError(node.args[0], "ctx.arg() takes a constant index 0..11")
            t = self.temp()
            self.emit(Load(t, self.context(), 8 * index.type.value, U64))
            return Operand(U64_T, t)
        if isinstance(base.type, RefT) and base.type.optional:
            raise _maybe_none(node.func, str(base.extra.get("name", "the value")))
        raise SourceError(node.func, f"{_describe(base.type)} has no method {method!r}")

    def construct(self, ty: StructT, node: ast.Call) -> Operand:
        slot = Place("frame", self.alloc(ty.size))
        fp, off = self.base(slot)
        self.emit(MemZero(fp, off, ty.size))
        fields = ty.field_names()
        given: dict[str, ast.expr] = {}
        if len(node.args) > len(fields):
            raise SourceError(node, f"{ty.name} has {len(fields)} fields, got {len(node.args)} "
                              "values")
        for name, arg in zip(fields, node.args, strict=False):
            given[name] = arg
        for keyword in node.keywords:
            if keyword.arg is None or ty.field(keyword.arg) is None:
                raise SourceError(keyword.value, f"{ty.name} has no field {keyword.arg!r}")
            if keyword.arg in given:
                raise SourceError(keyword.value, f"field {keyword.arg} given twice")
            given[keyword.arg] = keyword.value
        for name, arg in given.items():
            found = ty.field(name)
            assert found is not None
            field_type, offset = found
            expected = field_type.value if isinstance(field_type, IntT) else field_type
            value = self.coerce(self.expr(arg, expected=expected), expected, arg)
            self.put(slot.at(offset), field_type, value)
        return Operand(ty, place=slot, fresh=True)

    def inline(self, decl: FunctionDecl, node: ast.Call) -> Operand:
        if decl.program is not None:
            raise SourceError(node.func, f"{decl.name} is a program; programs cannot be called")
        if decl.name in self.recursive:
            raise Poisoned
        if node.keywords:
            raise SourceError(node, "arguments are passed by position")
        if len(node.args) != len(decl.params):
            raise SourceError(node, f"{decl.name}() takes {len(decl.params)} argument(s), got "
                              f"{len(node.args)}")
        bound: dict[str, Local] = {}
        for (name, ty, _), arg in zip(decl.params, node.args, strict=True):
            value = self.expr(arg, expected=ty)
            if isinstance(ty, ContextT):
                if value.type != ty:
                    raise SourceError(arg, f"expected {ty}, found {_describe(value.type)}")
                bound[name] = Local(ty, parameter=True)
                continue
            value = self.coerce(value, ty, arg)
            if isinstance(ty, IntT | BoolT):
                slot = self.alloc(8)
                assert value.value is not None
                self.store(Place("frame", slot), ty, value.value)
                bound[name] = Local(ty.value, slot=slot, parameter=True)
            else:
                bound[name] = Local(ty, place=value.place, parameter=True)
        caller = self.loc(node)
        outer = self.scope
        scope = Scope(decl, decl.name, caller, _assigned_names(decl.node))
        scope.locals = bound
        scope.state = State(frozenset(bound))
        scope.return_label = self.label(f"{decl.name}_return")
        scope.held_base = len(self.held)
        if decl.returns.is_data:
            scope.return_slot = self.alloc(_size(decl.returns))
        self.scope = scope
        try:
            self.body(decl.node.body)
            self.check_fallthrough(decl)
        finally:
            self.scope = outer
            self.node = node
        # With no return path the call never comes back; the code after it is
        # unreachable but still checked (and pruned from the IR).
        self.start(scope.return_label)
        if not scope.return_states:
            self.scope.state = State(frozenset(self.scope.local_names),
                                     frozenset(self.scope.local_names))
        ty = decl.returns
        if isinstance(ty, NoneT):
            return Operand(ty)
        assert scope.return_slot is not None
        place = Place("frame", scope.return_slot)
        if isinstance(ty, IntT | BoolT):
            return Operand(ty.value, self.load(place, ty))
        return Operand(ty, place=place, fresh=True)

    # -- types in function bodies ---------------------------------------------------------------

    def resolve_type(self, node: ast.expr) -> Type:
        from pykex.lang.module import resolve_type

        return resolve_type(self.module, node)


@dataclass
class LValue:
    type: Type
    place: Place | None
    ctx_offset: int | None = None
    packet_offset: Value | None = None


_INVERSE = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le"}
_PRELUDE_ALL = frozenset(names.prelude.__all__)


def _constant_compare(op: str, a: int, b: int, signed: bool) -> bool:
    return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b,
            "ge": a >= b}[op]


def _assign(dst: Temp, src: Value) -> Instr:
    from pykex.ir.nodes import Assign

    return Assign(dst, src)


def _range_default(ty: RangeT) -> IntT:
    """The type a :class:`RangeT` value takes when nothing asks for another: as a
    literal's, i64 unless only u64 holds it."""
    return names.DEFAULT_INT if ty.fits(names.DEFAULT_INT) else U64_T


def _one_type_holds(a: int, b: int) -> bool:
    """Whether one 64-bit integer type holds both ``a`` and ``b``."""
    low, high = min(a, b), max(a, b)
    return low >= -(1 << 63) and high < 1 << 64 and not (low < 0 and high >= 1 << 63)


def _slot_type(ty: Type) -> Type:
    """The type a value is stored with in a frame slot."""
    return _range_memory(ty) if isinstance(ty, RangeT) else ty


def _twos_complement(side: Operand, other: Operand) -> Operand:
    """In ``&``, ``|`` and ``^``, a negative literal beside an unsigned value stands
    for its two's complement at that value's width (``x & ~3``): what Python's
    unbounded bitwise operators give for a non-negative ``x``, wrapped."""
    if (isinstance(side.type, LiteralT) and side.type.value < 0
            and isinstance(other.type, IntT) and not other.type.signed):
        value = side.type.value & other.type.scalar.mask
        return Operand(LiteralT(value), value, node=side.node)
    return side


def _is_run(ty: Type) -> bool:
    """Whether values of ``ty`` compare as runs of bytes or elements."""
    return isinstance(ty, SliceT | BytesT | ArrayT) or (
        isinstance(ty, RefT) and isinstance(ty.target, ArrayT))


def _range_memory(ty: RangeT) -> IntT:
    """How a :class:`RangeT` value is kept in an 8-byte slot."""
    return IntT(I64) if ty.lo < 0 else U64_T


def _memory_int(ty: Type) -> IntT:
    if isinstance(ty, BoolT):
        return IntT(BOOL)
    if isinstance(ty, KernelT):
        return U64_T
    assert isinstance(ty, IntT)
    return ty


def _big_endian(ty: Type) -> bool:
    return isinstance(ty, IntT) and ty.big_endian


def _size(ty: Type) -> int:
    if isinstance(ty, IntT | BoolT | StructT | ArrayT):
        return ty.size
    raise TypeError(f"{ty} has no size")


def _optional_hint(ty: Type) -> str | None:
    """For an optional map reference used as a value: how to test it first."""
    if isinstance(ty, RefT) and ty.optional:
        return ("m.get(k) may be None: test it first, e.g. "
                "`if (v := m.get(k)) is not None:`, or use m[k] or m.setdefault(k, 0)")
    return None


def _describe(ty: Type) -> str:
    if isinstance(ty, LiteralT):
        return f"int literal {ty.value}"
    return str(ty)


def _not_storable(ty: Type, name: str | None) -> str:
    if isinstance(ty, MapT):
        return f"a variable cannot hold map {ty.name}; use the map's name directly"
    if isinstance(ty, NoneT):
        return "a variable cannot hold None" + (f" ({name})" if name else "")
    if isinstance(ty, TypeT):
        return f"a variable cannot hold the type {ty.target}"
    if isinstance(ty, StrT):
        return "strings exist only as literals in print(), raise and assert messages"
    if isinstance(ty, BytesT):
        return "byte strings exist only as constants compared with packet slices"
    return f"a variable cannot hold a {ty}"


def _maybe_none(node: ast.AST, name: str) -> SourceError:
    return SourceError(node, f"{name} may be None here",
                       f"test it first: `if {name} is not None:` or `if {name} is None: "
                       "return ...`")


def _key_message(mt: MapT, key_args: list[Value]) -> str:
    return f"key {{}} not in map {mt.name}" if key_args else f"key not in map {mt.name}"


def _printk_spec(ty: Type) -> str:
    return "%lld" if isinstance(ty, IntT) and ty.signed else "%llu"


def _expect_args(node: ast.Call, count: int, shape: str) -> None:
    if len(node.args) != count or node.keywords:
        raise SourceError(node, f"expected {shape}")


def _assigned_names(node: ast.FunctionDef) -> set[str]:
    """Every name the function binds (Python makes them local for the whole body)."""
    found = {a.arg for a in node.args.args}
    found |= _assigned_in(node.body)
    return found


def _assigned_in(statements: list[ast.stmt]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                found.add(node.id)
    return found


def _last_line(node: ast.FunctionDef) -> ast.AST:
    return node.body[-1] if node.body else node


def _reachable(blocks: list[Block]) -> list[Block]:
    by_label = {b.label: b for b in blocks}
    seen: set[str] = set()
    stack = [blocks[0].label]
    while stack:
        label = stack.pop()
        if label in seen:
            continue
        seen.add(label)
        stack += by_label[label].successors()
    return [b for b in blocks if b.label in seen]


def _is_literal_membership(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.In | ast.NotIn)
        and isinstance(node.comparators[0], ast.Tuple | ast.List | ast.Set)
    )


def _is_plain_read(node: ast.expr) -> bool:
    """Whether evaluating ``node`` twice is the same as once: names, constants, fields."""
    if isinstance(node, ast.Name | ast.Constant):
        return True
    return isinstance(node, ast.Attribute) and _is_plain_read(node.value)
