"""``pykex check``, ``build``, ``disasm`` and ``test-run``: outputs, exit codes, user errors.

Most tests call :func:`pykex.cli.main.main` in-process; a few run the
installed entry point to see real exit codes and streams.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pykex.bpf import assemble, encode
from pykex.cli import main as cli
from pykex.compiler import Compilation
from pykex.lang import check
from pykex.net import build_tcp_ipv4, build_udp_ipv4, ipv4_int

FIREWALL = """\
from pykex import xdp, XdpContext, XDP_PASS, XDP_DROP, HashMap, Struct, Array, u8, u32, be16, be32

class Ethernet(Struct):
    dst: Array[u8, 6]
    src: Array[u8, 6]
    proto: be16

class IPv4(Struct):
    version_ihl: u8
    tos: u8
    tot_len: be16
    id: be16
    frag_off: be16
    ttl: u8
    protocol: u8
    check: be16
    saddr: be32
    daddr: be32

blocked = HashMap[u32, u8](max_entries=16)

@xdp(on_error=XDP_PASS)
def firewall(ctx: XdpContext) -> int:
    eth = ctx.packet.read(0, Ethernet)
    if eth.proto != 0x0800:
        return XDP_PASS
    ip = ctx.packet.read(Ethernet.size, IPv4)
    if ip.protocol == 6:
        return XDP_DROP
    return XDP_PASS
"""

# Two programs: a tc one that rewrites the first byte and a tracepoint one.
TWO_PROGRAMS = """\
from pykex import tc, tracepoint, TcContext, TracepointContext, TC_ACT_SHOT, TC_ACT_OK

@tc(direction="ingress")
def mangle(ctx: TcContext) -> int:
    ctx.packet[0] = 0xAB
    if ctx.packet[1] == 0xFF:
        return TC_ACT_SHOT
    return TC_ACT_OK

@tracepoint("syscalls/sys_enter_getpid")
def watch(ctx: TracepointContext) -> int:
    return 0
"""

INVALID = """\
from pykex import xdp, XdpContext, XDP_PASS, u32, i64

@xdp()
def prog(ctx: XdpContext) -> int:
    a = u32(1) + i64(2)
    b = 1.5
    return XDP_PAS
"""


@pytest.fixture
def write(tmp_path: Path):
    def write_(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write_


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- check ---------------------------------------------------------------------------------


def test_check_valid_exits_0(write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    assert run_cli(capsys, "check", path) == (0, f"{path}: ok\n", "")


def test_check_invalid_prints_every_diagnostic_and_exits_1(write, capsys) -> None:
    path = write("bad.py", INVALID)
    code, out, err = run_cli(capsys, "check", path)
    expected = check(INVALID, filename=path)
    assert len(expected) == 3
    assert code == 1
    assert out == ""
    assert err == "\n".join(map(str, expected)) + f"\n{path}: 3 errors\n"
    for diagnostic in expected:
        assert re.match(rf"{re.escape(path)}:\d+:\d+: error: ", diagnostic.headline)


def test_check_several_files_fails_if_any_fails(write, capsys) -> None:
    good, bad = write("fw.py", FIREWALL), write("bad.py", INVALID)
    code, out, err = run_cli(capsys, "check", good, bad)
    assert code == 1
    assert out == f"{good}: ok\n"
    assert err.endswith(f"{bad}: 3 errors\n")


def test_check_syntax_error_is_a_diagnostic(write, capsys) -> None:
    path = write("syntax.py", "def broken(:\n")
    code, _, err = run_cli(capsys, "check", path)
    assert code == 1
    assert err.startswith(f"{path}:1:")
    assert "invalid syntax" in err


@pytest.mark.parametrize("command", ["check", "build", "disasm", "test-run"])
def test_missing_file_is_one_line(command: str, tmp_path: Path, capsys) -> None:
    missing = str(tmp_path / "nope.py")
    assert run_cli(capsys, command, missing) == (
        1, "", f"pykex: error: {missing}: no such file\n")


@pytest.mark.parametrize("command", ["check", "build", "disasm", "test-run"])
def test_directory_is_one_line(command: str, tmp_path: Path, capsys) -> None:
    code, out, err = run_cli(capsys, command, str(tmp_path))
    assert (code, out) == (1, "")
    assert err == f"pykex: error: {tmp_path}: is a directory, not an extension's .py file\n"


def test_non_utf8_source_is_one_line(write, tmp_path: Path, capsys) -> None:
    path = tmp_path / "latin1.py"
    path.write_bytes(b"# caf\xe9\n")
    code, _, err = run_cli(capsys, "check", str(path))
    assert code == 1
    assert err.startswith(f"pykex: error: {path}: not UTF-8 text")
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", ["build", "disasm", "test-run"])
def test_invalid_extension_prints_diagnostics(command: str, write, capsys) -> None:
    path = write("bad.py", INVALID)
    code, out, err = run_cli(capsys, command, path)
    assert (code, out) == (1, "")
    headlines = [d.headline for d in check(INVALID, filename=path)]
    assert [line for line in err.splitlines() if ": error: " in line] == headlines


# -- build -----------------------------------------------------------------------------------


def elf_header(data: bytes) -> tuple[bytes, int, int]:
    """Magic, class (2: 64-bit) and machine (247: EM_BPF) of an ELF file."""
    return data[:4], data[4], int.from_bytes(data[18:20], "little")


def test_build_writes_an_elf_object_beside_the_source(write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    assert run_cli(capsys, "build", path) == (0, "", "")
    data = Path(path).with_suffix(".o").read_bytes()
    assert elf_header(data) == (b"\x7fELF", 2, 247)
    assert data == Compilation(path).elf


def test_build_object_sections_read_by_readelf(write, tmp_path: Path, capsys) -> None:
    """An independent reader sees the program's and the map's sections."""
    path = write("fw.py", FIREWALL)
    output = tmp_path / "out.o"
    assert run_cli(capsys, "build", path, "-o", str(output))[0] == 0
    readelf = subprocess.run(["readelf", "-SW", str(output)], capture_output=True, text=True,
                             check=True).stdout
    sections = set(re.findall(r"\]\s+(\S+)", readelf))
    assert {"xdp", ".maps", "license"} <= sections


@pytest.mark.parametrize("output_format", ["ir", "asm", "stats"])
def test_build_text_formats_go_to_stdout(output_format: str, write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    code, out, err = run_cli(capsys, "build", path, "-f", output_format)
    assert (code, err) == (0, "")
    assert out == Compilation(path).output(output_format)


def test_build_text_format_to_a_file(write, tmp_path: Path, capsys) -> None:
    path = write("fw.py", FIREWALL)
    output = tmp_path / "fw.ir"
    assert run_cli(capsys, "build", path, "-f", "ir", "-o", str(output)) == (0, "", "")
    assert output.read_text() == Compilation(path).output("ir")


def test_build_stats_flag(write, tmp_path: Path, capsys) -> None:
    path = write("fw.py", FIREWALL)
    table = Compilation(path).output("stats")
    assert run_cli(capsys, "build", path, "-o", str(tmp_path / "x.o"), "--stats") == (
        0, table, "")
    # With the output itself on stdout, the table goes to stderr.
    assert run_cli(capsys, "build", path, "-f", "ir", "--stats")[2] == table
    instructions = int(table.splitlines()[1].split()[2])
    assert instructions == Compilation(path).compiled.programs[0].encode().slot_count


@pytest.mark.parametrize("level", [0, 1])
def test_build_opt_level_reaches_the_compilation(level: int, write, capsys,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[int] = []

    class Recording(Compilation):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            used.append(self.opt_level)

    monkeypatch.setattr("pykex.cli.check.Compilation", Recording)
    path = write("fw.py", FIREWALL)
    code, out, _ = run_cli(capsys, "build", path, "-f", "ir", f"-O{level}")
    assert (code, used) == (0, [level])
    assert out == Compilation(path, opt_level=level).output("ir")


def test_build_unknown_format_or_level_is_a_usage_error(write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    with pytest.raises(SystemExit) as exited:
        cli.main(["build", path, "-f", "hex"])
    assert exited.value.code == 2
    assert "invalid choice: 'hex'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["build", path, "-O7"])
    assert "invalid choice: 7" in capsys.readouterr().err


def test_build_unwritable_output_is_one_line(write, tmp_path: Path, capsys) -> None:
    path = write("fw.py", FIREWALL)
    target = tmp_path / "missing-dir" / "fw.o"
    assert run_cli(capsys, "build", path, "-o", str(target)) == (
        1, "", f"pykex: error: cannot write {target}: No such file or directory\n")


def test_build_invalid_writes_nothing(write, capsys) -> None:
    path = write("bad.py", INVALID)
    assert run_cli(capsys, "build", path)[0] == 1
    assert not Path(path).with_suffix(".o").exists()


def test_build_elf_to_stdout_through_the_entry_point(write) -> None:
    path = write("fw.py", FIREWALL)
    result = subprocess.run([sys.executable, "-m", "pykex.cli.main", "build", path, "-o", "-"],
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == Compilation(path).elf


# -- disasm ------------------------------------------------------------------------------------


def test_disasm_annotates_instructions_with_source_lines(write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    code, out, err = run_cli(capsys, "disasm", path)
    assert (code, err) == (0, "")
    source_lines = FIREWALL.splitlines()
    annotations = re.findall(rf"^; {re.escape(path)}:(\d+)  (.*)$", out, re.MULTILINE)
    assert annotations
    for number, text in annotations:
        assert source_lines[int(number) - 1].strip() == text
    annotated = {int(number) for number, _ in annotations}
    for statement in ("    eth = ctx.packet.read(0, Ethernet)", "        return XDP_DROP"):
        assert source_lines.index(statement) + 1 in annotated
    slots = Compilation(path).compiled.programs[0].encode().slot_count
    assert out.startswith(
        f"; program firewall: xdp, section xdp, on_error=2, {slots} instructions\n")


def test_disasm_listing_assembles_to_the_same_code(write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    _, out, _ = run_cli(capsys, "disasm", path, "--slots")
    assert re.search(r"^\s+0: ", out, re.MULTILINE)
    program = Compilation(path).compiled.programs[0]
    assert encode(assemble(out)).code == program.encode().code


def test_disasm_selects_programs(write, capsys) -> None:
    path = write("two.py", TWO_PROGRAMS)
    _, everything, _ = run_cli(capsys, "disasm", path)
    assert re.findall(r"^; program (\w+)", everything, re.MULTILINE) == ["mangle", "watch"]
    _, one, _ = run_cli(capsys, "disasm", path, "--program", "watch")
    assert re.findall(r"^; program (\w+)", one, re.MULTILINE) == ["watch"]
    assert run_cli(capsys, "disasm", path, "-p", "nope") == (
        1, "", f"pykex: error: {path} has no program 'nope' (programs: mangle, watch)\n")


# -- test-run ------------------------------------------------------------------------------------

MODES = [pytest.param([], id="kernel", marks=pytest.mark.kernel), pytest.param(["--host"],
                                                                               id="host")]


@pytest.mark.parametrize("mode", MODES)
def test_test_run_pass_and_drop(mode: list[str], write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    udp = build_udp_ipv4(b"hi")
    code, out, err = run_cli(capsys, "test-run", path, *mode, "--packet-hex", udp.hex())
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:3] == [
        "program:  firewall (xdp)", "returned: 2 (XDP_PASS)",
        f"packet:   unchanged ({len(udp)} bytes)"]
    if mode:
        assert len(lines) == 3
    else:
        assert re.fullmatch(r"duration: \d+ ns per run \(1 run\)", lines[3])
    tcp = build_tcp_ipv4()
    code, out, _ = run_cli(capsys, "test-run", path, *mode, "--packet-hex", tcp.hex())
    assert "returned: 1 (XDP_DROP)" in out.splitlines()


@pytest.mark.parametrize("mode", MODES)
def test_test_run_json(mode: list[str], write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    tcp = build_tcp_ipv4(saddr="10.9.8.7")
    code, out, err = run_cli(capsys, "test-run", path, *mode, "--json", "--repeat", "50",
                             "--packet-hex", tcp.hex())
    assert (code, err) == (0, "")
    document = json.loads(out)
    duration = document.pop("duration_ns")
    assert document == {
        "program": "firewall", "kind": "xdp", "retval": 1, "verdict": "XDP_DROP",
        "packet_in": tcp.hex(), "packet_out": tcp.hex(), "repeat": 50, "exception": None,
        "exceptions_raised": 0,
    }
    assert duration is None if mode else duration > 0
    assert ipv4_int("10.9.8.7") == int(document["packet_in"][52:60], 16)


@pytest.mark.parametrize("mode", MODES)
def test_test_run_shows_the_exception_as_a_traceback(mode: list[str], write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    short = build_udp_ipv4()[:20]  # an Ethernet header announcing IPv4, then 6 bytes
    code, out, _ = run_cli(capsys, "test-run", path, *mode, "--repeat", "3",
                           "--packet-hex", short.hex())
    assert code == 0
    line = FIREWALL.splitlines().index("    ip = ctx.packet.read(Ethernet.size, IPv4)") + 1
    assert "returned: 2 (XDP_PASS)" in out  # on_error
    traceback = out.split("exception (3 of 3 runs raised):\n", 1)[1]
    assert traceback.startswith(
        "Traceback (most recent call last):\n"
        f'  File "{path}", line {line}, in firewall\n'
        "    ip = ctx.packet.read(Ethernet.size, IPv4)\n"
        "IndexError: ")
    code, out, _ = run_cli(capsys, "test-run", path, *mode, "--json", "--packet-hex",
                           short.hex())
    exception = json.loads(out)["exception"]
    assert exception["kind"] == "IndexError"
    assert exception["frames"] == [{"file": path, "line": line, "function": "firewall",
                                    "text": "ip = ctx.packet.read(Ethernet.size, IPv4)"}]
    assert exception["traceback"].endswith("IndexError: " + exception["message"])


@pytest.mark.parametrize("mode", MODES)
def test_test_run_tc_verdicts_and_changed_packet(mode: list[str], write, capsys) -> None:
    path = write("two.py", TWO_PROGRAMS)
    packet = bytes(range(14)) + b"\xff" * 6
    code, out, err = run_cli(capsys, "test-run", path, *mode, "--program", "mangle",
                             "--packet-hex", packet.hex())
    assert (code, err) == (0, "")
    changed = b"\xab" + packet[1:]
    assert out.splitlines()[:3] == [
        "program:  mangle (tc)", "returned: 0 (TC_ACT_OK)",
        f"packet:   {changed.hex()} ({len(changed)} bytes)"]
    shot = b"\x00\xff" + packet[2:]
    _, out, _ = run_cli(capsys, "test-run", path, *mode, "-p", "mangle", "--json",
                        "--packet-hex", shot.hex())
    document = json.loads(out)
    assert (document["retval"], document["verdict"]) == (2, "TC_ACT_SHOT")
    assert document["packet_out"] == (b"\xab" + shot[1:]).hex()


def test_test_run_default_packet_is_a_udp_frame(write, capsys) -> None:
    path = write("fw.py", FIREWALL)
    _, out, _ = run_cli(capsys, "test-run", path, "--host", "--json")
    assert bytes.fromhex(json.loads(out)["packet_in"]) == build_udp_ipv4(b"pykex")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--program", "nope"], "{path} has no program 'nope' (programs: mangle, watch)"),
        ([], "{path} has 2 programs (mangle, watch); name one with --program"),
        (["-p", "mangle", "--packet-hex", "0g"], "--packet-hex is not hexadecimal bytes: '0g'"),
        (["-p", "mangle", "--packet-hex", "00" * 13],
         "test runs of tc program 'mangle' need a packet of at least 14 bytes "
         "(an Ethernet header), got 13"),
        (["-p", "mangle", "--repeat", "0"], "--repeat must be at least 1, got 0"),
        (["-p", "watch"],
         "the kernel cannot test-run tracepoint programs (BPF_PROG_TEST_RUN does not "
         "support them); run it in host mode with --host --ctx-hex RECORD"),
    ],
    ids=["no-such-program", "ambiguous", "bad-hex", "short-packet", "repeat", "tracepoint"],
)
def test_test_run_user_errors_are_one_line(arguments: list[str], message: str, write,
                                           capsys) -> None:
    path = write("two.py", TWO_PROGRAMS)
    host = ["--host"] if "tracepoint" not in message else []  # no kernel needed to refuse
    assert run_cli(capsys, "test-run", path, *host, *arguments) == (
        1, "", f"pykex: error: {message.format(path=path)}\n")


# -- through the installed entry point ----------------------------------------------------------


def pykex(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYKEX_DEBUG": ""}
    return subprocess.run([sys.executable, "-m", "pykex.cli.main", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_entry_point_exit_codes_and_streams(write) -> None:
    good, bad = write("fw.py", FIREWALL), write("bad.py", INVALID)
    assert pykex("check", good).returncode == 0
    result = pykex("check", bad)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count(": error: ") == 3
    result = pykex("build", good, "-f", "stats")
    assert result.returncode == 0
    assert result.stdout.startswith("program")


@pytest.mark.kernel
def test_entry_point_test_run_in_the_kernel(write) -> None:
    path = write("fw.py", FIREWALL)
    result = pykex("test-run", path, "--json", "--repeat", "10")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["retval"], document["verdict"]) == (2, "XDP_PASS")
    assert document["duration_ns"] > 0
