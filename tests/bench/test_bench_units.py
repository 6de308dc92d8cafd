"""The benchmark harness without the kernel: packets, method, report, BCC's answer."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bench.bcc import BccResult, _reason
from bench.measure import Settings, VersionResult, WorkloadResult, time_versions
from bench.report import Report, format_report, write_chart, write_json
from bench.versions import NOT_WRITTEN, PYKEX, Build, C, FdMaps, Instance
from bench.workloads import NAMES, XDP_PASS, CheckError, Workload, load_workloads

from bench import packets
from pykex.cli.bench import find_suite

SUITE = Path(__file__).resolve().parents[2] / "bench"


def test_checksum_follows_rfc_1071() -> None:
    # RFC 1071's example words sum to 0xddf2; the checksum is its complement.
    words = bytes.fromhex("0001f203f4f5f6f7")
    assert packets.internet_checksum(words) == 0xFFFF - 0xDDF2
    assert packets.internet_checksum(b"\x01") == 0xFEFF  # an odd byte is padded


def test_packets_carry_valid_checksums() -> None:
    frame = packets.tcp_packet(payload=b"hello")
    ip = frame[14:34]
    assert packets.internet_checksum(ip) == 0  # a correct header sums to all ones
    segment = frame[34:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, packets.IPPROTO_TCP, len(segment))
    assert packets.internet_checksum(pseudo + segment) == 0
    assert len(packets.tcp_packet_of_size(1500, b"EVIL")) == 1500
    assert packets.tcp_packet_of_size(1500, b"EVIL").endswith(b"EVIL")
    with pytest.raises(ValueError, match="no room"):
        packets.tcp_packet_of_size(50, b"x")


def test_every_workload_has_a_c_version_and_one_packet() -> None:
    workloads = load_workloads()
    assert [w.name for w in workloads] == list(NAMES)
    for workload in workloads:
        assert workload.c_source.is_file(), workload.name
        assert f"int {workload.function}(" in workload.c_source.read_text()
        assert len(workload.packet) >= 14
    with pytest.raises(ValueError, match="unknown workload nope"):
        load_workloads(["nope"])


# -- the method, with stand-ins for the kernel --------------------------------------


@dataclass
class FakeRun:
    retval: int
    duration_ns: int


@dataclass
class FakeInfo:
    xlated_insns: int = 4
    jited_size: int = 0  # no machine code to disassemble
    verified_insns: int = 5


@dataclass
class FakeProgram:
    retval: int
    durations: list[int]
    runs: list[int] = field(default_factory=list)

    def test_run(self, packet: bytes, *, repeat: int) -> FakeRun:
        self.runs.append(repeat)
        return FakeRun(self.retval, self.durations.pop(0) if repeat > 3 else 0)

    def info(self) -> FakeInfo:
        return FakeInfo()


def fake_build(language: str, log: list[str], retval: int, durations: list[int]) -> Build:
    def load() -> Instance:
        log.append(language)
        program = FakeProgram(retval, durations)
        return Instance(program, FdMaps({}), 0.001, lambda: log.append(f"close {language}"))  # type: ignore[arg-type]

    return Build(language, Path("prog"), 0.01, load, lambda: 0.01)


WORKLOAD = Workload(name="fake", title="fake", packet=bytes(60), retval=XDP_PASS)


def test_rounds_alternate_reload_and_take_the_median() -> None:
    log: list[str] = []
    py = (fake_build(PYKEX, log, XDP_PASS, [30, 10, 20, 90]), VersionResult(PYKEX))
    c = (fake_build(C, log, XDP_PASS, [10, 11, 12, 13]), VersionResult(C))
    time_versions(WORKLOAD, [py, c], Settings(repeat=1000, loads=4))
    loads = [entry for entry in log if not entry.startswith("close")]
    assert loads == [PYKEX, C, C, PYKEX, PYKEX, C, C, PYKEX]
    assert log.count(f"close {PYKEX}") == 4  # every load is released before the next
    assert py[1].ns_per_run == [30, 10, 20, 90]
    assert py[1].median_ns == 25
    assert WorkloadResult(WORKLOAD, c[1], py[1]).ratio == pytest.approx(25 / 11.5)


def test_a_wrong_verdict_is_never_timed() -> None:
    log: list[str] = []
    wrong = (fake_build(C, log, 1, [1, 1]), VersionResult(C))
    time_versions(WORKLOAD, [wrong], Settings(repeat=1000, loads=2))
    result = wrong[1]
    assert result.status == "failed"
    assert result.ns_per_run == []
    assert "the verdict is 1, expected 2" in result.check
    assert log == [C, f"close {C}"]  # not loaded again once it failed


def test_a_failing_map_check_fails_the_version() -> None:
    def never_right(maps: object, runs: int) -> None:
        raise CheckError(f"counter is {runs + 1}, expected {runs}")

    workload = Workload(name="w", title="w", packet=bytes(60), retval=XDP_PASS, check=never_right)
    result = VersionResult(C)
    time_versions(workload, [(fake_build(C, [], XDP_PASS, [5]), result)], Settings(loads=1))
    assert result.status == "failed"
    assert result.error == "check: counter is 4, expected 3"


# -- the report -----------------------------------------------------------------------


def sample_report() -> Report:
    workloads = {w.name: w for w in load_workloads(["empty", "spin_lock"])}
    empty_c = VersionResult(C, check="passed", ns_per_run=[21, 22, 20], load_seconds=[0.001],
                            compile_seconds=[0.05], xlated_insns=2, verified_insns=2)
    empty_py = VersionResult(PYKEX, status=NOT_WRITTEN)
    lock_c = VersionResult(C, check="passed", ns_per_run=[80.0, 84.0])
    lock_py = VersionResult(PYKEX, check="passed", ns_per_run=[82.0, 86.0])
    return Report(
        Settings(repeat=1000, loads=2),
        [
            WorkloadResult(workloads["empty"], empty_c, empty_py),
            WorkloadResult(workloads["spin_lock"], lock_c, lock_py),
        ],
        BccResult("does not start", error="Unable to find kernel headers."),
        {"kernel": "6.18", "cpu": "CPU", "cpus": 2, "clang": "clang 14", "python": "3.11"},
        "2025-01-01 00:00 UTC",
    )  # fmt: skip


def test_table_shows_floor_ratio_and_pending_versions() -> None:
    text = format_report(sample_report())
    assert "floor (empty C program): 21.0 ns/run" in text
    assert "not yet written" in text
    spin = next(line for line in text.splitlines() if line.startswith("spin_lock"))
    assert spin.split()[1:] == ["82.0", "84.0", "1.02"]
    assert "does not start: Unable to find kernel headers." in text
    assert "FAILED" not in text


def test_json_report_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    write_json(sample_report(), path)
    document = json.loads(path.read_text())
    assert document["floor_ns"] == 21
    empty, spin = document["workloads"]
    assert empty["pykex"]["status"] == NOT_WRITTEN and empty["ratio"] is None
    assert spin["ratio"] == pytest.approx(84 / 82)
    assert empty["c"]["source_to_loaded_ms"] == pytest.approx(51.0)
    assert document["bcc"]["status"] == "does not start"


def test_chart_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "ratios.png"
    write_chart(sample_report(), path)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_bcc_failure_is_told_in_bccs_words() -> None:
    output = (
        "sh: 1: modprobe: not found\n"
        "Unable to find kernel headers. Try rebuilding kernel with CONFIG_IKHEADERS=m.\n"
        "Traceback (most recent call last):\n"
        '  File "<string>", line 6, in <module>\n'
        "Exception: Failed to compile BPF module <text>\n"
    )
    reason, details = _reason(output)
    assert reason.startswith("Unable to find kernel headers.")
    assert details[-1] == "Exception: Failed to compile BPF module <text>"
    assert _reason("Traceback (most recent call last):\nValueError: x\n")[0] == "ValueError: x"


def test_suite_is_found_or_explained(tmp_path: Path) -> None:
    assert find_suite(SUITE) == SUITE
    with pytest.raises(FileNotFoundError, match="pass --suite DIR"):
        find_suite(tmp_path)

