"""A text assembler in the syntax of the kernel verifier log and ``bpftool prog dump xlated``.

One instruction per line; ``name:`` defines a label (alone or before an instruction);
``;`` and ``//`` start comments. A leading slot number and opcode as printed by the
kernel (``12: (b7) r0 = 0``) are ignored, so verifier logs can be pasted. Registers are
``r0``..``r10``; ``w`` registers select the 32-bit ALU and JMP32 classes and are also
accepted as the value of loads and stores. Forms::

    r0 = 1 / w0 = r1-style ALU:  =  +=  -=  *=  /=  s/=  %=  s%=  |=  &=  ^=  <<=  >>=  s>>=
    r0 = -r0                      r0 = (s8)r1 / w0 = (s16)w1           sign-extending move
    r0 = be16 r0 / le32 / bswap64 r1 = addr_space_cast(r2, 0, 1)
    r0 = *(u32 *)(r1 +4)          r0 = *(s16 *)(r1 +2)                 load / sign-extending
    *(u64 *)(r10 -8) = r1         *(u32 *)(r10 -4) = 0                 store register / imm
    lock *(u64 *)(r0 +0) += r1    (also |=, &=, ^=)
    r1 = atomic64_fetch_add((u64 *)(r2 +0), r1)   (fetch_or/and/xor, xchg; "64" optional)
    r0 = atomic64_cmpxchg((u64 *)(r2 +0), r0, r1)
    r0 = load_acquire((u64 *)(r1 +0))             store_release((u32 *)(r1 +0), r2)
    r1 = 0x1122334455667788 ll    r1 = map[counts] ll    r1 = map[fd:5] ll
    r1 = map_value[data]+16 ll    r1 = map_idx[0] ll      r1 = map_idx_value[0]+8 ll
    r1 = ksym[bpf_prog_active] ll r1 = ksym[id:123] ll    r2 = func[callback] ll
    r0 = *(u8 *)skb[12]           r0 = *(u16 *)skb[r1 + 4]             legacy packet loads
    if r1 s> 5 goto out / if w1 != w2 goto pc+3 / goto out / gotol out / may_goto +3
    call bpf_map_lookup_elem / call bpf_map_lookup_elem#1 / call 1      helper
    call my_subprog / call pc+5                                          bpf-to-bpf call
    call kfunc:bpf_iter_num_new / call kfunc:12345 / call kfunc:12345@2  kfunc (@ fd index)
    exit

``call NAME`` is a bpf-to-bpf call when NAME is a label of the program, otherwise a
helper call. Errors are :class:`~pykex.bpf.errors.AssemblyError` with the line number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pykex.bpf import dsl
from pykex.bpf.errors import AssemblyError, BpfError
from pykex.bpf.helpers import helper_name
from pykex.bpf.insn import MAX_REGISTER, Instruction, Register, SourceLocation
from pykex.bpf.opcodes import (
    AluOp,
    AtomicOp,
    Class,
    JmpOp,
    PseudoSrc,
    Size,
)

_NUM = r"[+-]?\s*(?:0[xX][0-9a-fA-F]+|\d+)"
_REG = r"[rw]\d+"
_IDENT = r"[A-Za-z_.$][\w.$]*"
_TARGET = rf"(?:pc\s*{_NUM}|{_NUM}|{_IDENT})"
_ADDR = rf"\*\s*\)\s*\(\s*(?P<base>{_REG})\s*(?P<off>{_NUM})?\s*\)"
_TYPED_ADDR = rf"\(\s*(?P<type>[us](?:8|16|32|64))\s*{_ADDR}"

_PREFIX = re.compile(r"^\s*\d+\s*:\s*(?:\([0-9a-fA-F]{2}\)\s*)?")
_LABEL = re.compile(rf"^\s*(?P<name>{_IDENT})\s*:(?!=)")

_ALU_OPERATORS = {
    "+=": (AluOp.ADD, 0),
    "-=": (AluOp.SUB, 0),
    "*=": (AluOp.MUL, 0),
    "/=": (AluOp.DIV, 0),
    "s/=": (AluOp.DIV, 1),
    "%=": (AluOp.MOD, 0),
    "s%=": (AluOp.MOD, 1),
    "|=": (AluOp.OR, 0),
    "&=": (AluOp.AND, 0),
    "^=": (AluOp.XOR, 0),
    "<<=": (AluOp.LSH, 0),
    ">>=": (AluOp.RSH, 0),
    "s>>=": (AluOp.ARSH, 0),
    "=": (AluOp.MOV, 0),
}
_JUMP_OPERATORS = {
    "==": JmpOp.JEQ,
    "!=": JmpOp.JNE,
    ">": JmpOp.JGT,
    ">=": JmpOp.JGE,
    "<": JmpOp.JLT,
    "<=": JmpOp.JLE,
    "s>": JmpOp.JSGT,
    "s>=": JmpOp.JSGE,
    "s<": JmpOp.JSLT,
    "s<=": JmpOp.JSLE,
    "&": JmpOp.JSET,
}
_LOCK_OPERATORS = {"+=": AtomicOp.ADD, "|=": AtomicOp.OR, "&=": AtomicOp.AND, "^=": AtomicOp.XOR}
_FETCH_OPERATORS = {
    "add": AtomicOp.FETCH_ADD,
    "or": AtomicOp.FETCH_OR,
    "and": AtomicOp.FETCH_AND,
    "xor": AtomicOp.FETCH_XOR,
}
_IMM64_KINDS = {
    "map": PseudoSrc.MAP_FD,
    "map_value": PseudoSrc.MAP_VALUE,
    "map_idx": PseudoSrc.MAP_IDX,
    "map_idx_value": PseudoSrc.MAP_IDX_VALUE,
}


def _operators(table: dict[str, object]) -> str:
    return "|".join(re.escape(op) for op in sorted(table, key=len, reverse=True))


class _LineError(Exception):
    """A problem on the current line; turned into AssemblyError with its number."""


@dataclass
class _Parsed:
    insn: Instruction
    line: int
    text: str
    # ``call NAME`` whose NAME may be a label or a helper; decided after all labels are known.
    ambiguous_call: str | None = None


def _int(text: str) -> int:
    return int(text.replace(" ", ""), 0)


def _offset(text: str | None) -> int:
    return 0 if text is None else _int(text)


def _register(text: str) -> tuple[Register, bool]:
    """(register, is_32_bit) for ``r3``/``w3``."""
    number = int(text[1:])
    if number > MAX_REGISTER:
        raise _LineError(f"there is no register {text} (registers are r0..r10)")
    return Register(number), text[0] == "w"


def _reg(text: str) -> Register:
    return _register(text)[0]


def _base(text: str) -> Register:
    register, is32 = _register(text)
    if is32:
        raise _LineError(f"a memory address needs a 64-bit register, not {text}")
    return register


def _size(type_name: str) -> Size:
    return Size.of_bytes(int(type_name[1:]) // 8)


def _imm32(text: str, wide_ok: bool) -> int:
    value = _int(text)
    if wide_ok and (1 << 31) <= value < (1 << 32):
        return value - (1 << 32)
    if not -(1 << 31) <= value < (1 << 31):
        hint = " (use `rN = VALUE ll` for 64-bit constants)" if not wide_ok else ""
        raise _LineError(f"immediate {text} does not fit in a signed 32-bit field{hint}")
    return value


def _target(text: str) -> str | int:
    """A label, or a slot offset written ``pc+N``/``+N``/``-N``."""
    compact = text.replace(" ", "")
    if compact.startswith("pc"):
        return _int(compact[2:])
    if compact[0] in "+-0123456789":
        return _int(compact)
    return compact


# -- one handler per form; each receives the regex match ---------------------------------


def _alu(m: re.Match[str]) -> Instruction:
    dst, dst32 = _register(m["dst"])
    op, signed = _ALU_OPERATORS[m["op"]]
    cls = Class.ALU if dst32 else Class.ALU64
    operand = m["operand"]
    if re.fullmatch(_REG, operand):
        src, src32 = _register(operand)
        if src32 != dst32:
            raise _LineError("operands mix 32-bit (w) and 64-bit (r) registers")
        return dsl.alu(cls, op, dst, src, off=signed)
    return dsl.alu(cls, op, dst, _imm32(operand, wide_ok=dst32), off=signed)


def _neg(m: re.Match[str]) -> Instruction:
    dst, dst32 = _register(m["dst"])
    if m["src"] != m["dst"]:
        raise _LineError("negation must be written rN = -rN with the same register")
    return dsl.neg32(dst) if dst32 else dsl.neg64(dst)


def _movsx(m: re.Match[str]) -> Instruction:
    dst, dst32 = _register(m["dst"])
    src, src32 = _register(m["src"])
    if src32 != dst32:
        raise _LineError("operands mix 32-bit (w) and 64-bit (r) registers")
    make = dsl.movsx32 if dst32 else dsl.movsx64
    return make(dst, src, int(m["bits"]))


def _addr_space_cast(m: re.Match[str]) -> Instruction:
    return dsl.addr_space_cast(_reg(m["dst"]), _reg(m["src"]), _int(m["to"]), _int(m["from"]))


def _endian(m: re.Match[str]) -> Instruction:
    if _reg(m["src"]) != _reg(m["dst"]):
        raise _LineError("byte swaps must be written rN = be16 rN with the same register")
    kind, bits = m["kind"], int(m["bits"])
    if kind == "bswap":
        return Instruction(Class.ALU64 | AluOp.END, _reg(m["dst"]), imm=bits)
    direction = 0x08 if kind == "be" else 0x00
    return Instruction(Class.ALU | AluOp.END | direction, _reg(m["dst"]), imm=bits)


def _load(m: re.Match[str]) -> Instruction:
    make = dsl.ldxs if m["type"][0] == "s" else dsl.ldx
    return make(_size(m["type"]), _reg(m["dst"]), _base(m["base"]), _offset(m["off"]))


def _store(m: re.Match[str]) -> Instruction:
    if m["type"][0] == "s":
        raise _LineError("stores take an unsigned type (u8, u16, u32, u64)")
    size, base, off = _size(m["type"]), _base(m["base"]), _offset(m["off"])
    value = m["value"]
    if re.fullmatch(_REG, value):
        return dsl.stx(size, base, off, _reg(value))
    return dsl.st(size, base, off, _imm32(value, wide_ok=size != Size.DW))


def _unsigned_address(m: re.Match[str]) -> tuple[Size, Register, int]:
    if m["type"][0] == "s":
        raise _LineError("atomic operations take an unsigned type (u8, u16, u32, u64)")
    return _size(m["type"]), _base(m["base"]), _offset(m["off"])


def _lock(m: re.Match[str]) -> Instruction:
    size, base, off = _unsigned_address(m)
    return dsl.atomic(_LOCK_OPERATORS[m["op"]], size, base, off, _reg(m["src"]))


def _fetch(m: re.Match[str]) -> Instruction:
    size, base, off = _unsigned_address(m)
    if _reg(m["dst"]) != _reg(m["src"]):
        raise _LineError("the old value returns in the operand register: rN = ...(..., rN)")
    op = AtomicOp.XCHG if m["name"] == "xchg" else _FETCH_OPERATORS[m["name"].split("_")[1]]
    return dsl.atomic(op, size, base, off, _reg(m["src"]))


def _cmpxchg(m: re.Match[str]) -> Instruction:
    size, base, off = _unsigned_address(m)
    if _reg(m["dst"]) != Register.R0 or _reg(m["old"]) != Register.R0:
        raise _LineError("cmpxchg compares with and returns in r0: r0 = ...cmpxchg(..., r0, rN)")
    return dsl.atomic_cmpxchg(size, base, off, _reg(m["src"]))


def _load_acquire(m: re.Match[str]) -> Instruction:
    size, base, off = _unsigned_address(m)
    return dsl.load_acquire(size, _reg(m["dst"]), base, off)


def _store_release(m: re.Match[str]) -> Instruction:
    size, base, off = _unsigned_address(m)
    return dsl.store_release(size, base, off, _reg(m["src"]))


def _skb_load(m: re.Match[str]) -> Instruction:
    if _reg(m["dst"]) != Register.R0:
        raise _LineError("legacy packet loads always load into r0")
    size = _size(m["type"])
    if m["index"] is None:
        return dsl.ld_abs(size, _imm32(m["imm"], wide_ok=True))
    signed = ("-" if m["sign"] == "-" else "") + m["imm"]
    return dsl.ld_ind(size, _reg(m["index"]), _imm32(signed, wide_ok=True))


def _imm64(m: re.Match[str]) -> Instruction:
    dst = _reg(m["dst"])
    value = _int(m["value"])
    if not -(1 << 63) <= value < (1 << 64):
        raise _LineError(f"{m['value']} does not fit in 64 bits")
    return dsl.ld_imm64(dst, value)


def _pseudo_imm64(m: re.Match[str]) -> Instruction:
    dst, kind, ref = _reg(m["dst"]), m["kind"], m["ref"].replace(" ", "")
    extra = _offset(m["extra"])
    if kind == "func":
        if extra:
            raise _LineError("func[...] takes no offset")
        return dsl.ld_func(dst, _target(ref))
    if kind == "ksym":
        if extra:
            raise _LineError("ksym[...] takes no offset")
        fd = 0
        if "," in ref:
            ref, fd_part = ref.split(",", 1)
            if not fd_part.startswith("fd:"):
                raise _LineError("write ksym[id:N, fd:M] for a BTF id in a module's BTF")
            fd = _int(fd_part[3:])
        if ref.startswith("id:"):
            return dsl.ld_imm64(dst, (fd << 32) | _int(ref[3:]), PseudoSrc.BTF_ID)
        if fd:
            raise _LineError("a named ksym takes no BTF fd: the loader finds it")
        return dsl.ld_ksym(dst, ref)
    src = _IMM64_KINDS[kind]
    if extra and src not in (PseudoSrc.MAP_VALUE, PseudoSrc.MAP_IDX_VALUE):
        raise _LineError(f"{kind}[...] takes no offset (did you mean {kind}_value?)")
    by_fd = src in (PseudoSrc.MAP_FD, PseudoSrc.MAP_VALUE)
    if by_fd and ref.startswith("fd:"):
        number, name = _int(ref[3:]), None
    elif not by_fd and re.fullmatch(r"\d+", ref):
        number, name = _int(ref), None
    elif re.fullmatch(_IDENT, ref):
        number, name = 0, ref
    else:
        form = "fd:N" if by_fd else "N"
        raise _LineError(f"{kind}[...] takes a map name or {form}, not {ref!r}")
    if not 0 <= extra < (1 << 31):
        raise _LineError(f"map value offset {extra} is out of range")
    return dsl.ld_imm64(dst, (extra << 32) | number, src).replace(map_ref=name)


def _jump(m: re.Match[str]) -> Instruction:
    make = {"goto": dsl.ja, "gotol": dsl.gotol, "may_goto": dsl.may_goto}[m["kind"]]
    return make(_target(m["target"]))


def _conditional(m: re.Match[str]) -> Instruction:
    dst, dst32 = _register(m["dst"])
    cls = Class.JMP32 if dst32 else Class.JMP
    op = _JUMP_OPERATORS[m["op"]]
    operand = m["operand"]
    target = _target(m["target"])
    if re.fullmatch(_REG, operand):
        src, src32 = _register(operand)
        if src32 != dst32:
            raise _LineError("operands mix 32-bit (w) and 64-bit (r) registers")
        return dsl.jump(cls, op, dst, src, target)
    # The kernel log prints jump immediates as unsigned hex, so accept that spelling too.
    return dsl.jump(cls, op, dst, _imm32(operand, wide_ok=True), target)


def _call(m: re.Match[str]) -> Instruction:
    what = m["what"].strip()
    if what.startswith("kfunc:"):
        ref, _, fd_index = what[len("kfunc:") :].partition("@")
        ref = ref.strip()
        index = _int(fd_index) if fd_index else 0
        if re.fullmatch(r"-?\d+", ref):
            return dsl.call_kfunc(_int(ref), index)
        if not re.fullmatch(_IDENT, ref):
            raise _LineError(f"kfunc:{ref} is not a kernel function name or BTF id")
        return dsl.call_kfunc(ref, index)
    compact = what.replace(" ", "")
    if compact.startswith("pc"):
        return dsl.call_local(_int(compact[2:]))
    if re.fullmatch(r"-?\d+", compact):
        return dsl.call_helper(_int(compact))
    if "#" in compact:
        name, _, number = compact.partition("#")
        if not re.fullmatch(r"\d+", number):
            raise _LineError(f"call {what}: expected NAME#ID")
        if helper_name(_int(number)) not in (name, None) and name != "unknown":
            raise _LineError(f"helper #{number} is {helper_name(_int(number))}, not {name}")
        return dsl.call_helper(_int(number))
    if not re.fullmatch(_IDENT, compact):
        raise _LineError(f"call {what}: expected a helper, a label, pc+N or kfunc:NAME")
    return dsl.call_local(compact)


_FORMS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Instruction]]] = [
    (re.compile(r"exit"), lambda m: dsl.exit()),
    (re.compile(r"call\s+(?P<what>.+)"), _call),
    (re.compile(rf"(?P<kind>gotol|goto|may_goto)\s+(?P<target>{_TARGET})"), _jump),
    (
        re.compile(
            rf"if\s+(?P<dst>{_REG})\s*(?P<op>{_operators(_JUMP_OPERATORS)})\s*"
            rf"(?P<operand>{_REG}|{_NUM})\s+goto\s+(?P<target>{_TARGET})"
        ),
        _conditional,
    ),
    (
        re.compile(
            rf"lock\s+\*\s*{_TYPED_ADDR}\s*(?P<op>{_operators(_LOCK_OPERATORS)})\s*"
            rf"(?P<src>{_REG})"
        ),
        _lock,
    ),
    (
        re.compile(
            rf"(?P<dst>{_REG})\s*=\s*atomic(?:64)?_(?P<name>fetch_(?:add|or|and|xor)|xchg)"
            rf"\(\s*{_TYPED_ADDR}\s*,\s*(?P<src>{_REG})\s*\)"
        ),
        _fetch,
    ),
    (
        re.compile(
            rf"(?P<dst>{_REG})\s*=\s*atomic(?:64)?_cmpxchg\(\s*{_TYPED_ADDR}\s*,\s*"
            rf"(?P<old>{_REG})\s*,\s*(?P<src>{_REG})\s*\)"
        ),
        _cmpxchg,
    ),
    (
        re.compile(rf"(?P<dst>{_REG})\s*=\s*load_acquire\(\s*{_TYPED_ADDR}\s*\)"),
        _load_acquire,
    ),
    (
        re.compile(rf"store_release\(\s*{_TYPED_ADDR}\s*,\s*(?P<src>{_REG})\s*\)"),
        _store_release,
    ),
    (
        re.compile(rf"\*\s*{_TYPED_ADDR}\s*=\s*(?P<value>{_REG}|{_NUM})"),
        _store,
    ),
    (re.compile(rf"(?P<dst>{_REG})\s*=\s*\*\s*{_TYPED_ADDR}"), _load),
    (
        re.compile(
            rf"(?P<dst>{_REG})\s*=\s*\*\s*\(\s*(?P<type>u(?:8|16|32))\s*\*\s*\)\s*skb\["
            rf"\s*(?:(?P<index>{_REG})\s*(?P<sign>[+-])\s*)?(?P<imm>\d+|0[xX][0-9a-fA-F]+|"
            rf"-\s*\d+)\s*\]"
        ),
        _skb_load,
    ),
    (
        re.compile(
            rf"(?P<dst>{_REG})\s*=\s*(?P<kind>map_idx_value|map_value|map_idx|map|ksym|func)"
            rf"\[(?P<ref>[^\]]+)\](?:\s*\+\s*(?P<extra>\d+|0[xX][0-9a-fA-F]+))?(?:\s+ll)?"
        ),
        _pseudo_imm64,
    ),
    (re.compile(rf"(?P<dst>{_REG})\s*=\s*(?P<value>{_NUM})\s+ll"), _imm64),
    (re.compile(rf"(?P<dst>{_REG})\s*=\s*\(s(?P<bits>8|16|32)\)\s*(?P<src>{_REG})"), _movsx),
    (
        re.compile(
            rf"(?P<dst>{_REG})\s*=\s*addr_space_cast\(\s*(?P<src>{_REG})\s*,\s*(?P<to>\d+)"
            rf"\s*,\s*(?P<from>\d+)\s*\)"
        ),
        _addr_space_cast,
    ),
    (
        re.compile(
            rf"(?P<dst>{_REG})\s*=\s*(?P<kind>be|le|bswap)(?P<bits>16|32|64)\s+(?P<src>{_REG})"
        ),
        _endian,
    ),
    (re.compile(rf"(?P<dst>{_REG})\s*=\s*-\s*(?P<src>{_REG})"), _neg),
    (
        re.compile(
            rf"(?P<dst>{_REG})\s*(?P<op>{_operators(_ALU_OPERATORS)})\s*"
            rf"(?P<operand>{_REG}|{_NUM})"
        ),
        _alu,
    ),
]


def _strip_comment(line: str) -> str:
    cut = len(line)
    for marker in (";", "//"):
        position = line.find(marker)
        if position != -1:
            cut = min(cut, position)
    return line[:cut]


def _parse_instruction(text: str) -> Instruction:
    for pattern, handler in _FORMS:
        m = pattern.fullmatch(text)
        if m is not None:
            insn = handler(m)
            insn.check()
            return insn
    raise _LineError("not an eBPF instruction")


def assemble(text: str, filename: str = "<asm>") -> list[Instruction]:
    """Assemble ``text`` into instructions; AssemblyError (with line number) on bad input.

    Each instruction's ``source`` records ``filename`` and its line. Labels become
    ``label``/``target`` metadata; :func:`pykex.bpf.encode` resolves them.
    """
    parsed: list[_Parsed] = []
    label_lines: dict[str, int] = {}
    aliases: dict[str, str] = {}  # second and later labels of one instruction -> first
    pending: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _PREFIX.sub("", _strip_comment(raw), count=1).strip()
        while (m := _LABEL.match(line)) is not None:
            name = m["name"]
            if name in label_lines:
                raise AssemblyError(
                    f"label {name!r} already defined on line {label_lines[name]}", number, raw
                )
            label_lines[name] = number
            pending.append(name)
            line = line[m.end() :].strip()
        if not line:
            continue
        try:
            insn = _parse_instruction(line)
        except (_LineError, BpfError, ValueError, TypeError) as error:
            raise AssemblyError(str(error), number, raw) from None
        if pending:
            insn = insn.with_label(pending[0])
            aliases.update((alias, pending[0]) for alias in pending[1:])
            pending = []
        ambiguous = insn.target if insn.is_local_call else None
        source = SourceLocation(filename, number, 0, raw)
        parsed.append(_Parsed(insn.with_source(source), number, raw, ambiguous))
    if pending:
        raise AssemblyError(
            f"label {pending[0]!r} is not followed by an instruction",
            label_lines[pending[0]],
        )
    return [_link(entry, label_lines, aliases) for entry in parsed]


def _link(entry: _Parsed, labels: dict[str, int], aliases: dict[str, str]) -> Instruction:
    """Resolve a target against the program's labels (helpers for ``call NAME``)."""
    insn = entry.insn
    if insn.target is None:
        return insn
    target = aliases.get(insn.target, insn.target)
    if target in labels:
        return insn.replace(target=target)
    if entry.ambiguous_call is not None:
        name = entry.ambiguous_call
        try:
            helper = dsl.call_helper(name)
        except KeyError:
            raise AssemblyError(
                f"{name!r} is neither a label nor a known helper", entry.line, entry.text
            ) from None
        return helper.replace(label=insn.label, source=insn.source)
    raise AssemblyError(f"undefined label {target!r}", entry.line, entry.text)
