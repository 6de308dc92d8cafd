"""The safe kernel interface: typed helpers whose sizes come from types.

Strings and kernel structs are read with the probe-read helpers into
buffers whose size is the destination's type (``name: Bytes[64] =
ctx.filename``); a string longer than the buffer is cut, always
NUL-terminated, and memory that cannot be read gives zeros (the helpers
clear the buffer on failure). Packet helpers take the context first, as the
kernel's do (``xdp_adjust_head(ctx, 14)``), and raise a Python exception
when the kernel refuses.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from pykex.ir.nodes import U32, U64, BinOp, Call, Cast, Load, MapRef, MemZero, Scalar, Temp, Value
from pykex.lang import names
from pykex.lang.contexts import (
    ContextLayoutError,
    TracepointString,
    probe_argument,
    probe_result,
)
from pykex.lang.diagnostics import SourceError
from pykex.lang.kernel_types import KernelTypeError, member, struct_pointer
from pykex.lang.module import holds_lock
from pykex.lang.types import (
    I64_T,
    U8_T,
    U64_T,
    ArrayT,
    BoolT,
    ContextT,
    IntT,
    KernelT,
    LiteralT,
    MapT,
    NoneT,
    RefT,
    StringT,
    Type,
    size_of,
)
from pykex.lang.values import Operand, Place

if TYPE_CHECKING:
    from pykex.lang.lower import FunctionLowering

BPF_F_CURRENT_CPU = 0xFFFFFFFF
BPF_F_USER_STACK = 1 << 8
COMM_SIZE = 16  # TASK_COMM_LEN

_STRING_HELPERS = {"user": "bpf_probe_read_user_str", "kernel": "bpf_probe_read_kernel_str"}

# prelude function -> the program kinds that may call it (the kernel's rule)
_KIND_RULES: dict[str, frozenset[str]] = {
    "xdp_adjust_head": frozenset({"xdp"}),
    "xdp_adjust_tail": frozenset({"xdp"}),
    "redirect": frozenset({"xdp", "tc"}),
    "redirect_map": frozenset({"xdp"}),
    "skb_load_bytes": frozenset({"tc", "socket_filter", "cgroup_skb"}),
    "skb_store_bytes": frozenset({"tc"}),
    "csum_diff": frozenset({"xdp", "tc"}),
    "l3_csum_replace": frozenset({"tc"}),
    "l4_csum_replace": frozenset({"tc"}),
    "get_stack": names.TRACING_KINDS,
}

KERNEL_FUNCTIONS = frozenset({"comm", "current_task", "user_string", "kernel_string",
                              "user_read", "kernel_read", "tail_call", *_KIND_RULES})

_READ_HELPERS = {"user": "bpf_probe_read_user", "kernel": "bpf_probe_read_kernel"}


class KernelCallsMixin:
    """Strings, kernel structs, context methods and helpers (mixed into FunctionLowering)."""

    # -- where the program runs -------------------------------------------------------------

    @property
    def kind(self: FunctionLowering) -> str | None:
        """The program kind being lowered (None for a function no program calls)."""
        return self.program.kind if self.program is not None else None

    def require_kind(self: FunctionLowering, what: str, kinds: frozenset[str],
                     node: ast.AST) -> None:
        if self.kind is not None and self.kind not in kinds:
            allowed = ", ".join(sorted(kinds))
            raise SourceError(node, f"{what} is not available in {self.kind} programs",
                              f"the kernel offers it to {allowed} programs")

    # -- reading memory ----------------------------------------------------------------------

    def probe_read(self: FunctionLowering, dst: Place, size: int, address: Value,
                   helper: str = "bpf_probe_read_kernel") -> None:
        pointer = self.pointer_to(dst)
        self.emit(Call(self.temp("err"), helper, [pointer, size, address]))

    def read_string(self: FunctionLowering, op: Operand, ty: ArrayT) -> Operand:
        """The string ``op`` copied into a fresh ``Bytes[N]`` (N from ``ty``)."""
        assert isinstance(op.type, StringT) and op.value is not None
        slot = Place("frame", self.alloc(ty.size))
        # The helpers stop at the NUL: clear what follows it, so that records
        # never carry bytes of an earlier run.
        base, offset = self.base(slot)
        self.emit(MemZero(base, offset, ty.size))
        self.probe_read(slot, ty.size, op.value, _STRING_HELPERS[op.type.space])
        return Operand(ty, place=slot, fresh=True)

    def read_kernel(self: FunctionLowering, address: Value, ty: Type, size: int) -> Operand:
        """``size`` bytes of kernel memory at ``address``, seen as ``ty``."""
        if isinstance(ty, IntT | KernelT | StringT):
            slot = Place("frame", self.alloc(8))
            self.probe_read(slot, size, address)
            scalar = ty.scalar if isinstance(ty, IntT) else U64
            return Operand(ty, self.load(slot, IntT(scalar)))
        assert isinstance(ty, ArrayT)
        slot = Place("frame", self.alloc(ty.size))
        self.probe_read(slot, ty.size, address)
        return Operand(ty, place=slot, fresh=True)

    def kernel_member(self: FunctionLowering, base: Operand, node: ast.Attribute) -> Operand:
        assert isinstance(base.type, KernelT) and base.value is not None
        try:
            found = member(base.type, node.attr)
        except KernelTypeError as failure:
            raise SourceError(node, str(failure)) from None
        address = self.temp("kaddr")
        self.emit(BinOp(address, "add", base.value, found.offset, U64))
        if isinstance(found.type, KernelT) and not found.type.pointer:
            return Operand(found.type, address)  # an embedded struct: its address
        return self.read_kernel(address, found.type, found.size)

    def tracepoint_string(self: FunctionLowering, found: TracepointString) -> Operand:
        field = found.field
        ctx = self.context()
        if found.form == "pointer":
            address = self.temp("str")
            self.emit(Load(address, ctx, field.offset, U64))
            return Operand(StringT(found.space), address)
        # __data_loc: the low 16 bits locate the bytes in the record (rel_loc:
        # counted from the end of the field).
        word, offset = self.temp("loc"), self.temp("loc")
        self.emit(Load(word, ctx, field.offset, U32))
        self.emit(BinOp(offset, "and", word, 0xFFFF, U64))
        if found.form == "rel_loc":
            moved = self.temp("loc")
            self.emit(BinOp(moved, "add", offset, field.offset + field.size, U64))
            offset = moved
        pointer = self.temp("str", pointer=True)
        self.emit(BinOp(pointer, "add", ctx, offset, U64))
        return Operand(StringT("kernel"), pointer)

    def tracepoint_array(self: FunctionLowering, offset: int, ty: ArrayT) -> Operand:
        """A fixed array of the tracepoint record copied into the frame.

        A ``char`` array is a string: the kernel often leaves stale bytes after
        its NUL, so it is read as strings are (zeros after the NUL). Other arrays
        are loaded: the kernel lets a tracepoint program load from its record at
        any offset aligned to the load's size, so the copy takes the widest
        aligned chunks it can."""
        slot = Place("frame", self.alloc(ty.size))
        ctx = self.context()
        if ty.text:
            field = self.temp("field", pointer=True)
            self.emit(BinOp(field, "add", ctx, offset, U64))
            base, start = self.base(slot)
            self.emit(MemZero(base, start, ty.size))
            self.probe_read(slot, ty.size, field, _STRING_HELPERS["kernel"])
            return Operand(ty, place=slot, fresh=True)
        position = 0
        while position < ty.size:
            width = next(w for w in (8, 4, 2, 1)
                         if (offset + position) % w == 0 and ty.size - position >= w)
            scalar = Scalar(width * 8, False)
            chunk = self.temp()
            self.emit(Load(chunk, ctx, offset + position, scalar))
            self.store(slot.at(position), IntT(scalar), chunk)
            position += width
        return Operand(ty, place=slot, fresh=True)

    # -- context methods ---------------------------------------------------------------------

    def probe_method(self: FunctionLowering, node: ast.Call, method: str) -> Operand:
        try:
            if method == "arg":
                expect_args(node, 1, "ctx.arg(i)")
                index = self.expr(node.args[0])
                if not isinstance(index.type, LiteralT) or not 0 <= index.type.value < 6:
                    raise SourceError(node.args[0], "ctx.arg() takes a constant index 0..5",
                                      "arguments past the sixth are on the stack")
                offset = probe_argument(index.type.value)
            elif method == "ret":
                expect_args(node, 0, "ctx.ret()")
                if self.program is not None and not self.program.attach.get("retprobe"):
                    raise SourceError(node, "ctx.ret() is the result of the probed function, "
                                      "known only to return probes",
                                      "use @kretprobe or @uretprobe")
                offset = probe_result()
            else:
                raise SourceError(node.func, f"ProbeContext has no method {method!r}",
                                  "use ctx.arg(i), ctx.ret(), ctx.ip, ctx.sp")
        except ContextLayoutError as failure:
            raise SourceError(node, str(failure)) from None
        t = self.temp()
        self.emit(Load(t, self.context(), offset, U64))
        return Operand(U64_T, t)

    def get_stackid(self: FunctionLowering, node: ast.Call) -> Operand:
        self.require_kind("get_stackid()", names.TRACING_KINDS, node)
        if len(node.args) != 1 or any(k.arg != "user" for k in node.keywords):
            raise SourceError(node, "expected ctx.get_stackid(stacks, user=False)")
        stacks = self.expr(node.args[0])
        if not isinstance(stacks.type, MapT) or stacks.type.kind != "StackTrace":
            raise SourceError(node.args[0], "get_stackid() stores stacks in a StackTrace map",
                              "declare stacks = StackTrace(max_entries=N)")
        flags = 0
        for keyword in node.keywords:
            flags |= BPF_F_USER_STACK if self.constant_flag(keyword.value) else 0
        m = self.temp("map", pointer=True)
        self.emit(MapRef(m, stacks.type.name))
        result = self.temp("stackid")
        self.emit(Call(result, "bpf_get_stackid", [self.context(), m, flags]))
        return Operand(I64_T, result)

    def constant_flag(self: FunctionLowering, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return node.value
        raise SourceError(node, "this option takes True or False")

    # -- event output ------------------------------------------------------------------------

    def output_record(self: FunctionLowering, mt: MapT, node: ast.Call) -> Operand:
        """``rb.output(v)`` / ``perf.output(v)``: a full ring counts a drop."""
        expect_args(node, 1, f"{mt.name}.output(value)")
        value = self.materialise(self.expr(node.args[0]), node.args[0])
        if not value.type.is_data and not isinstance(value.type, RefT):
            raise SourceError(node.args[0], f"cannot send a {value.type}")
        if isinstance(value.type, RefT):
            value = self.coerce(value, value.type.target, node.args[0])
        pointer, _ = self.data_pointer(value, value.type)
        self.shared.record_sent(mt.name, value.type)
        m = self.temp("map", pointer=True)
        self.emit(MapRef(m, mt.name))
        err = self.temp("err")
        size = size_of(value.type)
        if mt.kind == "RingBuffer":
            self.emit(Call(err, "bpf_ringbuf_output", [m, pointer, size, 0]))
        else:
            self.emit(Call(err, "bpf_perf_event_output",
                           [self.context(), m, BPF_F_CURRENT_CPU, pointer, size]))
        full, sent = self.label("dropped"), self.label("sent")
        state = self.scope.state
        self.end_branch("ne", err, 0, True, full, sent)
        self.start(full)
        self.count_drop(mt.name)
        self.jump(sent)
        self.start(sent)
        self.scope.state = state  # both paths meet knowing what was known before
        return Operand(NoneT())

    # -- prelude functions -------------------------------------------------------------------

    def kernel_function(self: FunctionLowering, name: str, node: ast.Call) -> Operand:
        if name in _KIND_RULES:
            self.require_kind(f"{name}()", _KIND_RULES[name], node)
        if name == "comm":
            expect_args(node, 0, "comm()")
            slot = Place("frame", self.alloc(COMM_SIZE))
            self.emit(Call(self.temp("err"), "bpf_get_current_comm",
                           [self.pointer_to(slot), COMM_SIZE]))
            return Operand(ArrayT(U8_T, COMM_SIZE, text=True), place=slot, fresh=True)
        if name == "current_task":
            expect_args(node, 0, "current_task()")
            try:
                task = struct_pointer("task_struct")
            except KernelTypeError as failure:
                raise SourceError(node, str(failure)) from None
            t = self.temp("task")
            self.emit(Call(t, "bpf_get_current_task", []))
            return Operand(task, t)
        if name in ("user_string", "kernel_string"):
            expect_args(node, 1, f"{name}(address)")
            address = self.coerce(self.expr(node.args[0], expected=U64_T), U64_T,
                                  node.args[0])
            return Operand(StringT(name.removesuffix("_string")), address.value)
        if name in ("user_read", "kernel_read"):
            return self.read_memory(node, name.removesuffix("_read"))
        return getattr(self, f"helper_{name}")(node)

    def read_memory(self: FunctionLowering, node: ast.Call, space: str) -> Operand:
        """``user_read(address, T)`` / ``kernel_read(address, T)``: ``T.size`` bytes at
        ``address`` seen as a ``T``. The helpers clear the destination when the
        memory cannot be read, so a fault reads as zeros."""
        shape = f"{space}_read(address, Type)"
        expect_args(node, 2, shape)
        address = self.coerce(self.expr(node.args[0], expected=U64_T), U64_T, node.args[0])
        assert address.value is not None
        ty = self.resolve_type(node.args[1])
        if not ty.is_data or holds_lock(ty):
            raise SourceError(node.args[1], f"{shape} reads an integer, bool, Struct or "
                              f"Array (without a SpinLock), not {ty}")
        size = size_of(ty)
        slot = Place("frame", self.alloc(size))
        self.probe_read(slot, size, address.value, _READ_HELPERS[space])
        if isinstance(ty, IntT | BoolT):
            return Operand(ty.value, self.load(slot, ty))
        return Operand(ty, place=slot, fresh=True)

    def ctx_argument(self: FunctionLowering, node: ast.Call, what: str) -> Temp:
        arg = self.expr(node.args[0]) if node.args else None
        if arg is None or not isinstance(arg.type, ContextT):
            raise SourceError(node, f"{what} takes the program's ctx first")
        return self.context()

    def integer_argument(self: FunctionLowering, node: ast.expr, ty: IntT) -> Value:
        value = self.coerce(self.expr(node, expected=ty), ty, node).value
        assert value is not None
        return value

    def buffer_argument(self: FunctionLowering, node: ast.expr, what: str) -> tuple[Temp, int]:
        """A pointer to an Array (or Struct) place and its size."""
        op = self.expr(node)
        if isinstance(op.type, RefT) and not op.type.optional:
            op = self.coerce(op, op.type.target, node)
        if op.place is None or not op.type.is_data:
            raise SourceError(node, f"{what} needs an Array, Bytes or Struct value, not "
                              f"{op.type}")
        return self.pointer_to(op.place), size_of(op.type)

    def raise_if_negative(self: FunctionLowering, result: Temp, kind: str, message: str,
                          args: list[Value], node: ast.AST) -> None:
        ok = self.label("ok")
        fail = self.cold_raise(kind, message, [*args, result], node)
        self.end_branch("lt", result, 0, True, fail, ok)
        self.start(ok)

    def helper_xdp_adjust_head(self: FunctionLowering, node: ast.Call) -> Operand:
        return self.adjust_packet(node, "bpf_xdp_adjust_head", "xdp_adjust_head")

    def helper_xdp_adjust_tail(self: FunctionLowering, node: ast.Call) -> Operand:
        return self.adjust_packet(node, "bpf_xdp_adjust_tail", "xdp_adjust_tail")

    def adjust_packet(self: FunctionLowering, node: ast.Call, helper: str, name: str
                      ) -> Operand:
        expect_args(node, 2, f"{name}(ctx, delta)")
        ctx = self.ctx_argument(node, f"{name}()")
        delta = self.integer_argument(node.args[1], IntT(I64_T.scalar))
        result = self.temp("err")
        self.emit(Call(result, helper, [ctx, delta]))
        # Every later packet access re-derives its pointer from the context.
        self.raise_if_negative(result, "ValueError", f"{name}({{}}) failed with error {{}}",
                               [delta], node)
        return Operand(NoneT())

    def helper_redirect(self: FunctionLowering, node: ast.Call) -> Operand:
        expect_args(node, 1, "redirect(ifindex)")
        ifindex = self.integer_argument(node.args[0], IntT(U32))
        verdict = self.temp("verdict")
        self.emit(Call(verdict, "bpf_redirect", [ifindex, 0]))
        return Operand(I64_T, verdict)

    def helper_redirect_map(self: FunctionLowering, node: ast.Call) -> Operand:
        if len(node.args) not in (2, 3) or node.keywords:
            raise SourceError(node, "expected redirect_map(devices, index) or "
                              "redirect_map(devices, index, fallback_verdict)")
        devices = self.expr(node.args[0])
        if not isinstance(devices.type, MapT) or devices.type.kind != "DevMap":
            raise SourceError(node.args[0], "redirect_map() sends packets to a DevMap")
        index = self.integer_argument(node.args[1], IntT(U32))
        fallback = 0
        if len(node.args) == 3:
            constant = self.expr(node.args[2])
            if not isinstance(constant.type, LiteralT) or not 0 <= constant.type.value < 8:
                raise SourceError(node.args[2], "the fallback verdict is a constant such as "
                                  "XDP_PASS")
            fallback = constant.type.value
        m = self.temp("map", pointer=True)
        self.emit(MapRef(m, devices.type.name))
        verdict = self.temp("verdict")
        self.emit(Call(verdict, "bpf_redirect_map", [m, index, fallback]))
        return Operand(I64_T, verdict)

    def helper_tail_call(self: FunctionLowering, node: ast.Call) -> Operand:
        """``tail_call(ctx, programs, index)``: ``bpf_tail_call``. It returns only when
        the slot is empty (or 33 tail calls were chained): then code goes on."""
        expect_args(node, 3, "tail_call(ctx, programs, index)")
        ctx = self.ctx_argument(node, "tail_call()")
        programs = self.expr(node.args[1])
        if not isinstance(programs.type, MapT) or programs.type.kind != "ProgramArray":
            raise SourceError(node.args[1], "tail_call() jumps through a ProgramArray",
                              "declare progs = ProgramArray(max_entries=N) at module level")
        reserved = next((h for h in self.held if h.kind == "reservation"), None)
        if reserved is not None:
            raise SourceError(node, "tail_call() cannot leave a reserved record behind",
                              f"call it after the `with` block of line "
                              f"{getattr(reserved.node, 'lineno', '?')}")
        index = self.integer_argument(node.args[2], IntT(U32))
        m = self.temp("map", pointer=True)
        self.emit(MapRef(m, programs.type.name))
        # bpf_tail_call returns nothing the verifier lets code read (RET_VOID).
        self.emit(Call(None, "bpf_tail_call", [ctx, m, index]))
        return Operand(NoneT())

    def helper_skb_load_bytes(self: FunctionLowering, node: ast.Call) -> Operand:
        expect_args(node, 3, "skb_load_bytes(ctx, offset, buffer)")
        ctx = self.ctx_argument(node, "skb_load_bytes()")
        offset = self.integer_argument(node.args[1], IntT(U32))
        pointer, size = self.buffer_argument(node.args[2], "skb_load_bytes()")
        result = self.temp("err")
        self.emit(Call(result, "bpf_skb_load_bytes", [ctx, offset, pointer, size]))
        self.raise_if_negative(result, "IndexError", f"cannot load {size} packet bytes at "
                               "offset {} (error {})", [offset], node)
        return Operand(NoneT())

    def helper_skb_store_bytes(self: FunctionLowering, node: ast.Call) -> Operand:
        expect_args(node, 3, "skb_store_bytes(ctx, offset, buffer)")
        ctx = self.ctx_argument(node, "skb_store_bytes()")
        offset = self.integer_argument(node.args[1], IntT(U32))
        pointer, size = self.buffer_argument(node.args[2], "skb_store_bytes()")
        result = self.temp("err")
        self.emit(Call(result, "bpf_skb_store_bytes", [ctx, offset, pointer, size, 0]))
        self.raise_if_negative(result, "IndexError", f"cannot store {size} packet bytes at "
                               "offset {} (error {})", [offset], node)
        return Operand(NoneT())

    def helper_csum_diff(self: FunctionLowering, node: ast.Call) -> Operand:
        expect_args(node, 3, "csum_diff(old, new, seed)")
        old, old_size = self.buffer_argument(node.args[0], "csum_diff()")
        new, new_size = self.buffer_argument(node.args[1], "csum_diff()")
        for size, arg in ((old_size, node.args[0]), (new_size, node.args[1])):
            if size % 4 or size > 512:
                raise SourceError(arg, f"csum_diff() works on multiples of 4 bytes up to "
                                  f"512, not {size}")
        seed = self.integer_argument(node.args[2], IntT(U32))
        result = self.temp("csum")
        self.emit(Call(result, "bpf_csum_diff", [old, old_size, new, new_size, seed]))
        self.raise_if_negative(result, "ValueError", "csum_diff failed with error {}", [],
                               node)
        narrowed = self.temp("csum")
        self.emit(Cast(narrowed, result, U32))
        return Operand(IntT(U32), narrowed)

    def helper_l3_csum_replace(self: FunctionLowering, node: ast.Call) -> Operand:
        return self.csum_replace(node, "bpf_l3_csum_replace", "l3_csum_replace")

    def helper_l4_csum_replace(self: FunctionLowering, node: ast.Call) -> Operand:
        return self.csum_replace(node, "bpf_l4_csum_replace", "l4_csum_replace")

    def csum_replace(self: FunctionLowering, node: ast.Call, helper: str, name: str
                     ) -> Operand:
        """``name(ctx, offset, old, new, size)``: fix the checksum at ``offset`` for a
        ``size``-byte field (2 or 4) that changed from ``old`` to ``new``."""
        expect_args(node, 5, f"{name}(ctx, offset, old, new, size)")
        ctx = self.ctx_argument(node, f"{name}()")
        offset = self.integer_argument(node.args[1], IntT(U32))
        old = self.integer_argument(node.args[2], IntT(U64))
        new = self.integer_argument(node.args[3], IntT(U64))
        size = self.expr(node.args[4])
        if not isinstance(size.type, LiteralT) or size.type.value not in (2, 4):
            raise SourceError(node.args[4], "the field size is the constant 2 or 4")
        result = self.temp("err")
        self.emit(Call(result, helper, [ctx, offset, old, new, size.type.value]))
        self.raise_if_negative(result, "ValueError", f"{name} at offset {{}} failed with "
                               "error {}", [offset], node)
        return Operand(NoneT())

    def helper_get_stack(self: FunctionLowering, node: ast.Call) -> Operand:
        if len(node.args) != 2 or any(k.arg != "user" for k in node.keywords):
            raise SourceError(node, "expected get_stack(ctx, buffer, user=False)")
        ctx = self.ctx_argument(node, "get_stack()")
        buffer = self.expr(node.args[1])
        if not (isinstance(buffer.type, ArrayT) and buffer.type.element == U64_T
                and buffer.place is not None):
            raise SourceError(node.args[1], "get_stack() fills an Array[u64, N]")
        flags = 0
        for keyword in node.keywords:
            flags |= BPF_F_USER_STACK if self.constant_flag(keyword.value) else 0
        result = self.temp("frames")
        self.emit(Call(result, "bpf_get_stack",
                       [ctx, self.pointer_to(buffer.place), buffer.type.size, flags]))
        self.raise_if_negative(result, "ValueError", "get_stack failed with error {}", [],
                               node)
        count = self.temp("frames")
        self.emit(BinOp(count, "shr", result, 3, U64))
        return Operand(IntT(U32), count)




def expect_args(node: ast.Call, count: int, shape: str) -> None:
    if len(node.args) != count or node.keywords:
        raise SourceError(node, f"expected {shape}")
