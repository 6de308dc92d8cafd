"""The reader against clang's BTF output, checked by bpftool."""

import subprocess
from pathlib import Path

import pytest

from pykex.btf import (
    Builder,
    Composite,
    ExtInfo,
    Func,
    Kind,
    Member,
    Spec,
    Type,
    Var,
    decode_ext,
    dump,
    encode_ext,
)

from .conftest import require_tools

SOURCE = r"""
typedef unsigned int __u32;
typedef unsigned long long __u64;
#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

struct bpf_spin_lock { __u32 val; };
struct value { struct bpf_spin_lock l; __u64 v; };
struct flags { unsigned a:3, b:5; int c; };
union either { int i; float f; };
enum color { RED, GREEN = 5, BLUE = -1 };
enum big { HUGE = 0xfffffffffffULL };

struct {
	__uint(type, 1);
	__type(key, __u32);
	__type(value, struct value);
	__uint(max_entries, 1024);
} counts SEC(".maps");

__u64 hits SEC(".data") = 1;
enum color colour SEC(".data") = GREEN;
enum big big SEC(".data") = HUGE;

static __attribute__((noinline)) int helper(struct flags *f, union either *e)
{
	return f->b + f->c + e->i;
}

SEC("xdp") int prog(void *ctx)
{
	struct flags f = {1, 2, 3};
	union either e = {4};
	return helper(&f, &e) + hits + colour + big;
}

char _license[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("clang", "llvm-objcopy", "bpftool")
    directory = tmp_path_factory.mktemp("clang")
    (directory / "prog.c").write_text(SOURCE)
    subprocess.run(
        ["clang", "-O2", "-g", "-target", "bpf", "-c", "prog.c", "-o", "prog.o"],
        cwd=directory,
        check=True,
    )
    subprocess.run(
        [
            "llvm-objcopy",
            "--dump-section",
            ".BTF=prog.btf",
            "--dump-section",
            ".BTF.ext=prog.btf.ext",
            "prog.o",
        ],
        cwd=directory,
        check=True,
    )
    return directory


@pytest.fixture(scope="module")
def spec(compiled: Path) -> Spec:
    return Spec.parse((compiled / "prog.btf").read_bytes())


def test_matches_bpftool(compiled: Path, spec: Spec) -> None:
    expected = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(compiled / "prog.o")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert dump(spec.types(), spec.type_by_id) == expected


def test_layout_from_clang(spec: Spec) -> None:
    flags = spec.find("flags", Kind.STRUCT)
    b = spec.member(flags, "b")
    assert (b.bit_offset, b.bitfield_size) == (3, 5)
    assert spec.member(flags, "c").byte_offset == 4
    assert spec.sizeof("value") == 16
    assert spec.member("value", "l.val").size == 4
    # clang before 15 knows neither the signed kind_flag nor ENUM64: it writes
    # -1 as 0xffffffff and truncates 64-bit enums to an 8-byte ENUM.
    color = spec.find("color")
    assert color.value_of("BLUE") == (-1 if color.signed else 0xFFFFFFFF)
    big = spec.find("big")
    huge = big.value_of("HUGE")
    assert huge == (0xFFFFFFFFFFF if big.kind == Kind.ENUM64 else 0xFFFFFFFF)
    assert spec.sizeof(big) == 8
    helper = spec.find("helper", Kind.FUNC)
    assert [p.name for p in spec.func_proto(helper).params] == ["f", "e"]


def shape(types: Spec | Builder, t: Type | int) -> str:
    """A C-like rendering that ignores type ids and typedef names, for comparing graphs."""
    t = types.type_by_id(t) if isinstance(t, int) else t
    if t.kind in (Kind.PTR, Kind.TYPEDEF):
        return shape(types, t.target) + ("*" if t.kind == Kind.PTR else "")
    if t.kind == Kind.ARRAY:
        return f"{shape(types, t.element)}[{t.count}]"
    if isinstance(t, Composite):
        inner = ", ".join(f"{m.name}@{m.bit_offset}:{shape(types, m.type)}" for m in t.members)
        return f"{t.kind.name.lower()} {t.name} {{{inner}}}"
    return t.name


def test_builder_map_definition_matches_clang(spec: Spec) -> None:
    counts = spec.find("counts", Kind.VAR)
    assert isinstance(counts, Var)
    b = Builder()
    u32 = b.add_int("unsigned int", 4)
    u64 = b.add_int("unsigned long long", 8)
    value = b.add_struct("value", 16, [Member("l", b.add_spin_lock(), 0), Member("v", u64, 64)])
    ours = b.add_map_definition(map_type=1, key=u32, value=value, max_entries=1024)
    assert shape(b, ours) == shape(spec, counts.type)
    datasec, _ = b.add_maps_section([("counts", ours)])
    clang_maps = spec.find(".maps", Kind.DATASEC)
    ours_maps = b.type_by_id(datasec)
    assert [(v.offset, v.size) for v in ours_maps.vars] == [
        (v.offset, v.size) for v in clang_maps.vars
    ]
    our_var = b.type_by_id(ours_maps.vars[0].type)
    assert (our_var.name, our_var.linkage) == (counts.name, counts.linkage)


def test_ext_from_clang(compiled: Path, spec: Spec) -> None:
    ext = decode_ext((compiled / "prog.btf.ext").read_bytes(), spec)
    assert set(ext.func_info) == {"xdp", ".text"}
    [main] = ext.func_info["xdp"]
    [helper] = ext.func_info[".text"]
    assert main.insn == 0 and helper.insn == 0
    for info, name in ((main, "prog"), (helper, "helper")):
        func = spec.type_by_id(info.type_id)
        assert isinstance(func, Func) and func.name == name
    source_lines = SOURCE.splitlines()
    for section, records in ext.line_info.items():
        assert section in ("xdp", ".text")
        assert [r.insn for r in records] == sorted({r.insn for r in records})
        for record in records:
            assert record.file_name.endswith("prog.c")
            if record.line:  # line 0 marks compiler-generated code
                # SOURCE starts with a newline, so file line n is source_lines[n - 1].
                assert record.line_text == source_lines[record.line - 1]
    helper_lines = {r.line for r in ext.line_info[".text"]}
    assert helper_lines == {source_lines.index("\treturn f->b + f->c + e->i;") + 1}


def test_ext_reencodes_to_the_same_records(compiled: Path, spec: Spec) -> None:
    ext = decode_ext((compiled / "prog.btf.ext").read_bytes(), spec)
    b = Builder()
    for t in spec.types():
        b.add(t)
    encoded = encode_ext(ext, b)
    rebuilt = Spec.parse(b.emit())
    assert decode_ext(encoded, rebuilt) == ext
    assert decode_ext(encode_ext(ExtInfo(), Builder()), rebuilt) == ExtInfo()
