"""Slices: runs of packet bytes or array elements, compared and copied whole.

A slice is never a value of its own: ``ctx.packet[a:b]``, ``array[i:j]``, a
whole Array and a byte-string constant are each a :class:`Run` (where the
elements are, the first one and how many), which ``==``/``!=`` compare and
slice assignment (``data[:n] = ctx.packet[a:a + n]``) copies.

Bounds are checked when the slice is evaluated, before anything is read or
written: a slice reaching past the packet or the array raises IndexError
(Python would shorten it; a fixed array cannot be shortened). A run whose
length is a constant is compared with a few wide loads when it is short
(:data:`UNROLL_LIMIT`); every other run is walked element by element by a
loop of the kind ``for`` makes (counter in the frame, ``may_goto`` on the back
edge), which the verifier checks once, whatever the length.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykex.ir.nodes import (
    U8,
    U16,
    U32,
    U64,
    BinOp,
    Block,
    Compare,
    Load,
    LoopBack,
    MemCopy,
    Temp,
    Value,
)
from pykex.lang.diagnostics import SourceError
from pykex.lang.types import (
    BOOL_T,
    U8_T,
    U64_T,
    ArrayT,
    BoolT,
    BytesT,
    IntT,
    LiteralT,
    PacketT,
    RefT,
    SliceT,
    Type,
)
from pykex.lang.values import Operand, Place

if TYPE_CHECKING:
    from pykex.lang.lower import FunctionLowering

# Runs of constant length up to this many bytes compare with unrolled loads
# (8 bytes at a time); longer ones with a loop. Measured on gap case 17 (two
# 32-byte names): 4 loads a side verify in a handful of instructions and run
# in a few nanoseconds, where the loop costs ~20 instructions per byte.
UNROLL_LIMIT = 64


@dataclass
class Run:
    """A slice as the lowering sees it: ``length`` elements of type ``element``
    from ``start`` on, in the packet (``start`` a byte offset), an array at
    ``place`` (``capacity`` elements) or a byte string ``data``. ``length`` is an
    int when constant; ``length_key`` spells the expression that gave it, so that
    two slices of the same written length need no run-time comparison."""

    source: str  # "packet", "array" or "bytes"
    element: Type
    start: Value
    length: Value
    length_type: Type = U64_T
    length_key: str | None = None
    place: Place | None = None
    capacity: int = 0
    data: bytes = b""
    checked: bool = True  # constant-length packet runs are checked where they are read

    @property
    def constant(self) -> bool:
        return isinstance(self.length, int)

    @property
    def direct(self) -> bool:
        """Whether the elements sit at offsets known at compile time."""
        return self.constant and (self.source != "array" or isinstance(self.start, int))


class SlicesMixin:
    """Slicing, slice comparison and slice assignment (mixed into FunctionLowering)."""

    # -- making runs --------------------------------------------------------------------

    def packet_slice(self: FunctionLowering, node: ast.Subscript) -> Operand:
        """``ctx.packet[a:b]``: a run of bytes. A constant length (``[off:off + 4]``)
        is checked where the bytes are read; any other now."""
        piece = node.slice
        assert isinstance(piece, ast.Slice)
        if piece.step is not None:
            raise SourceError(piece, "packet slices take no step")
        lower = piece.lower if piece.lower is not None else ast.Constant(0)
        if piece.upper is None:
            raise SourceError(node, "a packet slice needs an end: ctx.packet[a:b]")
        length = self.constant_length(lower, piece.upper)
        if length is not None:
            if length <= 0:
                raise SourceError(node, "a packet slice must have a positive length")
            offset = self.index_value(self.expr(lower), lower)
            run = Run("packet", U8_T, offset, length, checked=False)
            return Operand(SliceT(length), extra={"run": run})
        start = self.index_value(self.expr(lower), lower)
        count, count_type, key = self.slice_length(lower, piece.upper, start)
        packet_length = self.packet_length()
        self.check_run(start, count, packet_length, "packet offset {} + {} > length {}",
                       [start, count, packet_length], node)
        run = Run("packet", U8_T, start, count, count_type, key)
        return Operand(SliceT(None), extra={"run": run})

    def constant_length(self: FunctionLowering, lower: ast.expr, upper: ast.expr
                        ) -> int | None:
        """The length of slice ``[lower:upper]`` when it is a constant: both bounds are,
        or the end is written ``lower + n`` (or ``n + lower``) with ``n`` a constant
        (``4``, ``HEADER``, ``len(SIGNATURE)``). Nothing is evaluated."""
        first, end = self.constant_value(lower), self.constant_value(upper)
        if first is not None and end is not None:
            return end - first
        if isinstance(upper, ast.BinOp) and isinstance(upper.op, ast.Add):
            for base, distance in ((upper.left, upper.right), (upper.right, upper.left)):
                if ast.dump(base) == ast.dump(lower):
                    return self.constant_value(distance)
        return None

    def constant_value(self: FunctionLowering, node: ast.expr) -> int | None:
        """The value of ``node`` when it is a constant expression (locals never shadow
        module names, so the module's folding decides)."""
        from pykex.lang.module import fold

        if any(isinstance(n, ast.Name) and n.id in self.scope.local_names
               for n in ast.walk(node)):
            return None
        try:
            return fold(self.module, node).value
        except SourceError:
            return None

    def slice_length(self: FunctionLowering, lower: ast.expr, upper: ast.expr, start: Value
                     ) -> tuple[Value, Type, str | None]:
        """The length of slice ``[lower:upper]`` of run-time length: the ``n`` of an end
        written ``lower + n`` (its spelling is the length's key), else ``upper - lower``."""
        if isinstance(upper, ast.BinOp) and isinstance(upper.op, ast.Add):
            for base, distance in ((upper.left, upper.right), (upper.right, upper.left)):
                if ast.dump(base) == ast.dump(lower):
                    count = self.integer(self.expr(distance), distance)
                    assert count.value is not None
                    return count.value, count.type, ast.dump(distance)
        end = self.integer(self.expr(upper), upper)
        assert end.value is not None
        if isinstance(start, int) and start == 0:
            return end.value, end.type, ast.dump(upper)
        count = self.temp("count")
        self.emit(BinOp(count, "sub", end.value, start, U64))
        return count, U64_T, None

    def integer(self: FunctionLowering, op: Operand, node: ast.AST) -> Operand:
        """``op`` as a typed integer (a literal takes the default type)."""
        if isinstance(op.type, LiteralT):
            return self.materialise(op, node)
        if not isinstance(op.type, IntT):
            raise SourceError(node, f"an index must be an integer, not {op.type}")
        return op

    def array_slice(self: FunctionLowering, base: Operand, node: ast.Subscript) -> Operand:
        """``array[i:j]``: a run of its elements; bounds past the array raise IndexError
        (a compile-time error when they are constants)."""
        array, place = self.array_of(base, node)
        piece = node.slice
        assert isinstance(piece, ast.Slice)
        if piece.step is not None:
            raise SourceError(piece, "slices take no step")
        lower = piece.lower if piece.lower is not None else ast.Constant(0)
        upper = piece.upper if piece.upper is not None else ast.Constant(array.length)
        first, end = self.constant_value(lower), self.constant_value(upper)
        if first is not None and end is not None:
            if not 0 <= first <= end <= array.length:
                raise SourceError(node, f"slice {first}:{end} is out of range for {array}",
                                  "slice bounds are 0 <= start <= end <= length (negative "
                                  "bounds do not count from the end)")
            run = Run("array", array.element, first, end - first, place=place,
                      capacity=array.length)
            return Operand(SliceT(end - first, array.element, "array"), extra={"run": run})
        start = self.integer(self.expr(lower), lower).value
        assert start is not None
        count, count_type, key = self.slice_length(lower, upper, start)
        if isinstance(count, int) and count > array.length:
            raise SourceError(node, f"a slice of {count} elements is longer than {array}")
        stop = self.temp("stop")
        self.check_run(start, count, array.length, "slice {}:{} out of range for length {}",
                       [start, stop, array.length], node,
                       before=[BinOp(stop, "add", start, count, U64)])
        run = Run("array", array.element, start, count, count_type, key, place=place,
                  capacity=array.length)
        return Operand(SliceT(None, array.element, "array"), extra={"run": run})

    def array_of(self: FunctionLowering, op: Operand, node: ast.AST) -> tuple[ArrayT, Place]:
        ty = op.type
        if isinstance(ty, RefT) and not ty.optional and isinstance(ty.target, ArrayT):
            assert isinstance(op.value, Temp)
            return ty.target, Place("ptr", 0, op.value)
        if not isinstance(ty, ArrayT) or op.place is None:
            raise SourceError(node, f"cannot index a {ty}")
        return ty, op.place

    def check_run(self: FunctionLowering, start: Value, count: Value, limit: Value,
                  message: str, args: list[Value], node: ast.AST,
                  before: list | None = None) -> None:
        """Raise IndexError(``message``) unless ``count <= limit`` and ``start <=
        limit - count`` (unsigned: a negative count or start is out of range too).
        Callers rule out what constants alone decide."""
        fail = self.cold_raise("IndexError", message, args, node, before=before)
        room: Value
        if isinstance(count, int) and isinstance(limit, int):
            room = limit - count
        else:
            self.check_at_most(count, limit, fail)
            room = self.temp("room")
            self.emit(BinOp(room, "sub", limit, count, U64))
        self.check_at_most(start, room, fail)

    def check_at_most(self: FunctionLowering, value: Value, limit: Value, fail: str) -> None:
        """Go to ``fail`` unless ``value <= limit`` (unsigned)."""
        ok = self.label("slice_ok")
        if isinstance(value, int):  # a constant goes on the right of a comparison
            self.end_branch("lt", limit, value, False, fail, ok)
        else:
            self.end_branch("gt", value, limit, False, fail, ok)
        self.start(ok)

    def as_run(self: FunctionLowering, op: Operand, node: ast.AST) -> Run | None:
        """The run an operand stands for: a slice, a whole Array, a byte string."""
        if isinstance(op.type, SliceT):
            run = op.extra["run"]
            assert isinstance(run, Run)
            return run
        if isinstance(op.type, BytesT):
            data = op.type.value
            return Run("bytes", U8_T, 0, len(data), data=data)
        if isinstance(op.type, ArrayT) or (isinstance(op.type, RefT) and isinstance(
                op.type.target, ArrayT) and not op.type.optional):
            array, place = self.array_of(op, node)
            return Run("array", array.element, 0, array.length, place=place,
                       capacity=array.length)
        return None

    # -- reading and writing elements ---------------------------------------------------

    def array_element(self: FunctionLowering, place: Place, element: Type, capacity: int,
                      index: Value, node: ast.AST, shown: bool = True) -> Place:
        """Element ``index`` of the array at ``place``: IndexError unless
        ``index < capacity``, a check the verifier also needs to bound the access.
        ``shown``: the exception shows the index (slices, whose bounds were checked
        before, leave it out, so that it need not outlive the check)."""
        stride = element.size  # type: ignore[attr-defined]
        if isinstance(index, int):
            return place.at(index * stride)
        ok = self.label("in_bounds")
        if shown:
            fail = self.cold_raise("IndexError", "index {} out of range for length {}",
                                   [index, capacity], node)
        else:
            fail = self.cold_raise("IndexError", "slice index out of range for length {}",
                                   [capacity], node)
        self.end_branch("lt", index, capacity, False, ok, fail)
        self.start(ok)
        scaled = self.temp()
        self.emit(BinOp(scaled, "mul", index, stride, U64))
        base, offset = self.base(place)
        pointer = self.temp("elem", pointer=True)
        self.emit(BinOp(pointer, "add", base, scaled, U64))
        return Place("ptr", offset, pointer)

    def run_place(self: FunctionLowering, run: Run, k: Value, node: ast.AST) -> Place:
        """Where element ``k`` of ``run`` is (``k`` below its length)."""
        index: Value = k
        if not (isinstance(run.start, int) and run.start == 0):
            index = self.temp("index")
            self.emit(BinOp(index, "add", run.start, k, U64))
        if run.source == "packet":
            return Place("ptr", 0, self.packet_pointer(index, 1, node))
        if run.source == "bytes":
            stored = Place("global", self.shared.string(run.data), map=".rodata")
            return self.array_element(stored, U8_T, len(run.data), index, node, shown=False)
        assert run.place is not None
        return self.array_element(run.place, run.element, run.capacity, index, node,
                                  shown=False)

    def for_each(self: FunctionLowering, count: Value, node: ast.AST,
                 body: Callable[[Value], None]) -> None:
        """``for k in range(count): body(k)``, as ``for`` lowers it: the counter in
        the frame, ``may_goto`` on the back edge. ``body`` may branch away."""
        state = self.scope.state
        counter, limit = Place("frame", self.alloc(8)), Place("frame", self.alloc(8))
        self.store(counter, U64_T, 0)
        self.store(limit, U64_T, count)
        head, loop_body, done, exhausted = (self.label(h) for h in (
            "slice_loop", "slice_body", "slice_done", "exhausted"))
        self.jump(head)
        self.start(head)
        self.end_branch("lt", self.load(counter, U64_T), self.load(limit, U64_T), False,
                        loop_body, done)
        self.start(loop_body)
        body(self.load(counter, U64_T))
        following = self.temp()
        self.emit(BinOp(following, "add", self.load(counter, U64_T), 1, U64))
        self.store(counter, U64_T, following)
        self.end(LoopBack(head, exhausted))
        self.cold.append(Block(exhausted, self.raise_instrs(
            "TerminationError", "loop budget exhausted", [], self.loc(node))))
        self.start(done)
        self.scope.state = state

    def ensure_checked(self: FunctionLowering, run: Run, node: ast.AST) -> Temp | None:
        """Check a packet run of constant length now; the pointer to its bytes."""
        if run.source != "packet" or run.checked:
            return None
        assert isinstance(run.length, int)
        return self.packet_pointer(run.start, run.length, node)

    # -- comparing ------------------------------------------------------------------------

    def slice_compare(self: FunctionLowering, node: ast.Compare, left: Operand,
                      right: Operand) -> Operand:
        """``a == b`` / ``a != b`` of slices, Arrays and byte strings: equal when both
        have the same length and the same elements, as in Python."""
        from pykex.lang.lower import _COMPARE, _describe

        op = _COMPARE.get(type(node.ops[0]))
        a, b = self.as_run(left, node.left), self.as_run(right, node.comparators[0])
        if a is None or b is None or not _comparable(a.element, b.element):
            raise SourceError(node, f"cannot compare {_describe(left.type)} and "
                              f"{_describe(right.type)}")
        if op not in ("eq", "ne") and "packet" in (a.source, b.source):
            raise SourceError(node, "packet slices compare with == and != only")
        if op not in ("eq", "ne"):
            raise SourceError(node, "arrays and slices compare with == and != only")
        if a.constant and b.constant and a.length != b.length:
            if {a.source, b.source} == {"packet", "bytes"}:
                sliced, string = (a, b) if a.source == "packet" else (b, a)
                raise SourceError(node, f"the slice has {sliced.length} bytes but the string "
                                  f"has {string.length}", "the comparison would always be False")
            raise SourceError(node, f"the two sides have {a.length} and {b.length} elements",
                              "the comparison would always be False")
        size = a.length * a.element.size if a.constant else 0  # type: ignore
        if a.direct and b.direct and size <= UNROLL_LIMIT:
            equal = self.compare_unrolled(a, b, node)
        else:
            equal = self.compare_loop(a, b, node)
        if op == "eq":
            return equal
        if isinstance(equal.value, int):
            return Operand(BOOL_T, 1 - equal.value)
        flipped = self.temp()
        self.emit(Compare(flipped, "eq", equal.value, 0, False))  # type: ignore[arg-type]
        return Operand(BOOL_T, flipped)

    def compare_unrolled(self: FunctionLowering, a: Run, b: Run, node: ast.AST) -> Operand:
        """Equality of two runs of the same constant length, 8 bytes at a time."""
        size = a.length * a.element.size  # type: ignore[operator, attr-defined]
        if a.source == "bytes" and b.source == "bytes":
            return Operand(BOOL_T, int(a.data == b.data))
        readers = [self.chunk_reader(run, node) for run in (a, b)]
        diff: Value = 0
        position = 0
        for width, scalar in ((8, U64), (4, U32), (2, U16), (1, U8)):
            while size - position >= width:
                x, y = (read(position, width, scalar) for read in readers)
                delta: Value
                if isinstance(x, int) and isinstance(y, int):
                    delta = x ^ y
                else:
                    delta = self.temp()
                    self.emit(BinOp(delta, "xor", x, y, U64))
                if diff == 0:
                    diff = delta
                elif delta != 0:
                    combined = self.temp()
                    self.emit(BinOp(combined, "or", diff, delta, U64))
                    diff = combined
                position += width
        if isinstance(diff, int):
            return Operand(BOOL_T, int(diff == 0))
        t = self.temp()
        self.emit(Compare(t, "eq", diff, 0, False))
        return Operand(BOOL_T, t)

    def chunk_reader(self: FunctionLowering, run: Run, node: ast.AST
                     ) -> Callable[[int, int, object], Value]:
        """A function giving the ``width`` bytes at byte ``position`` of a direct run."""
        if run.source == "bytes":
            data = run.data

            def constant(position: int, width: int, scalar: object) -> Value:
                return int.from_bytes(data[position:position + width], "little")
            return constant
        if run.source == "packet":
            pointer = self.ensure_checked(run, node)
            assert pointer is not None  # a direct packet run is read here first
            base, offset = pointer, 0
        else:
            assert run.place is not None and isinstance(run.start, int)
            stride = run.element.size  # type: ignore[attr-defined]
            base, offset = self.base(run.place.at(run.start * stride))

        def load(position: int, width: int, scalar: object) -> Value:
            t = self.temp()
            self.emit(Load(t, base, offset + position, scalar))  # type: ignore[arg-type]
            return t
        return load

    def compare_loop(self: FunctionLowering, a: Run, b: Run, node: ast.AST) -> Operand:
        """Equality of two runs element by element; unequal lengths are unequal."""
        for run in (a, b):
            self.ensure_checked(run, node)
        state = self.scope.state
        result = Place("frame", self.alloc(8))
        differ, done = self.label("slices_differ"), self.label("slices_compared")
        if not _same_length(a, b):
            same = self.label("same_length")
            self.end_branch("ne", a.length, b.length, False, differ, same)
            self.start(same)

        def compare_elements(k: Value) -> None:
            x = self.load(self.run_place(a, k, node), a.element)
            y = self.load(self.run_place(b, k, node), b.element)
            equal = self.label("elements_equal")
            self.end_branch("ne", x, y, False, differ, equal)
            self.start(equal)

        self.for_each(a.length, node, compare_elements)
        self.store(result, BOOL_T, 1)
        self.jump(done)
        self.start(differ)
        self.scope.state = state
        self.store(result, BOOL_T, 0)
        self.jump(done)
        self.start(done)
        self.scope.state = state
        return Operand(BOOL_T, self.load(result, BOOL_T))

    # -- copying ----------------------------------------------------------------------------

    def slice_assign(self: FunctionLowering, target: ast.Subscript, value_node: ast.expr
                     ) -> None:
        """``array[i:j] = value``: copy a slice, Array or byte string of the same length
        and element type into the array (ValueError when the lengths differ)."""
        from pykex.lang.lower import _describe

        value = self.expr(value_node)
        base = self.expr(target.value)
        if isinstance(base.type, PacketT):
            raise SourceError(target, "cannot assign to a packet slice",
                              "write fields with ctx.packet.write(offset, value)")
        if not isinstance(base.type, ArrayT | RefT):
            raise SourceError(target, f"cannot assign to {ast.unparse(target)}")
        dst = self.as_run(self.array_slice(base, target), target)
        src = self.as_run(value, value_node)
        assert dst is not None
        if src is None or src.element != dst.element:
            raise SourceError(value_node, f"expected a slice of {dst.element} elements, "
                              f"found {_describe(value.type)}")
        self.copy_run(dst, src, target)

    def copy_run(self: FunctionLowering, dst: Run, src: Run, node: ast.AST) -> None:
        if dst.constant and src.constant:
            if dst.length != src.length:
                raise SourceError(node, f"cannot assign {src.length} elements to a slice of "
                                  f"{dst.length}", "a slice of a fixed array keeps its length")
        elif not _same_length(dst, src):
            ok = self.label("lengths_match")
            fail = self.cold_raise("ValueError", "cannot assign {} elements to a slice of {}",
                                   [src.length, dst.length], node)
            self.end_branch("ne", src.length, dst.length, False, fail, ok)
            self.start(ok)
        pointer = self.ensure_checked(src, node)
        if src.source == "array":
            src = self.snapshot(src)  # Python copies the value first: overlapping runs work
        stride = dst.element.size  # type: ignore[attr-defined]
        if dst.direct and src.direct:
            assert dst.place is not None and isinstance(dst.start, int)
            size = dst.length * stride  # type: ignore[operator]
            target = dst.place.at(dst.start * stride)
            if src.source == "packet":
                assert pointer is not None
                d, offset = self.base(target)
                self.emit(MemCopy(d, offset, pointer, 0, size))
            elif size:
                self.copy(target, self.direct_place(src), size)
            return

        def copy_element(k: Value) -> None:
            source = self.run_place(src, k, node)
            destination = self.run_place(dst, k, node)
            if isinstance(dst.element, IntT | BoolT):
                self.store(destination, dst.element, self.load(source, dst.element))
            else:
                self.copy(destination, source, stride)

        self.for_each(dst.length, node, copy_element)

    def direct_place(self: FunctionLowering, run: Run) -> Place:
        if run.source == "bytes":
            return Place("global", self.shared.string(run.data), map=".rodata")
        assert run.place is not None and isinstance(run.start, int)
        return run.place.at(run.start * run.element.size)  # type: ignore[attr-defined]

    def snapshot(self: FunctionLowering, run: Run) -> Run:
        """``run`` read from a copy of its whole array in the frame."""
        assert run.place is not None
        size = run.capacity * run.element.size  # type: ignore[attr-defined]
        copy = Place("frame", self.alloc(size))
        self.copy(copy, run.place, size)
        return Run("array", run.element, run.start, run.length, run.length_type, run.length_key,
                   place=copy, capacity=run.capacity)

    def slice_value(self: FunctionLowering, op: Operand, ty: ArrayT, node: ast.AST) -> Operand:
        """A slice of constant length as a new Array in the frame (``head = x[0:4]``)."""
        run = self.as_run(op, node)
        assert run is not None
        slot = Place("frame", self.alloc(ty.size))
        self.copy_run(Run("array", ty.element, 0, ty.length, place=slot, capacity=ty.length),
                      run, node)
        return Operand(ty, place=slot, fresh=True)

    def run_length(self: FunctionLowering, op: Operand) -> Operand:
        """``len(slice)``: a constant when the slice's length is one."""
        run = op.extra["run"]
        assert isinstance(run, Run)
        if isinstance(run.length, int):
            return Operand(LiteralT(run.length), run.length)
        return Operand(run.length_type, run.length)


def _comparable(a: Type, b: Type) -> bool:
    """Whether runs of ``a`` and ``b`` elements compare byte for byte."""
    return isinstance(a, IntT | BoolT) and a == b


def _same_length(a: Run, b: Run) -> bool:
    """Whether the lengths of ``a`` and ``b`` are equal by construction."""
    if a.constant and b.constant:
        return a.length == b.length
    return a.length_key is not None and a.length_key == b.length_key
