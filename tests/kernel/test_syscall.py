"""The bpf(2) entry point and its thin per-command wrappers, against the real kernel."""

from __future__ import annotations

import ctypes
import errno
import struct

import pytest

from pykex.kernel import (
    BPFError,
    BTFLoadError,
    KeyNotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    Program,
    ProgType,
    VerifierError,
    syscall,
)
from pykex.kernel.errors import summarize_verifier_log
from pykex.kernel.uapi import Cmd, MapType

pytestmark = pytest.mark.kernel


def insn(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", opcode, dst | src << 4, off, imm)


RETURN_2 = insn(0xB7, imm=2) + insn(0x95)  # r0 = 2; exit


def test_load_and_test_run_reports_retval_and_duration() -> None:
    with Program.load(ProgType.XDP, RETURN_2, name="ret2") as prog:
        result = prog.test_run(bytes(64), repeat=100)
        assert result.retval == 2
        assert result.data_out == bytes(64)
        assert result.duration_ns > 0
        info = prog.info()
        assert info.name == "ret2"
        assert info.type is ProgType.XDP
        assert info.verified_insns == 2
        assert info.xlated_insns == 2
        assert info.jited_size > 0


def test_verifier_rejection_carries_log_and_summary() -> None:
    with pytest.raises(VerifierError) as caught:
        Program.load(ProgType.XDP, insn(0x95), name="noret")  # exit without r0
    error = caught.value
    assert error.summary == "R0 !read_ok"
    assert "R0 !read_ok" in error.log
    assert error.errno == errno.EACCES
    assert "verifier: R0 !read_ok" in str(error)


def test_verifier_log_on_success_when_asked() -> None:
    with Program.load(ProgType.XDP, RETURN_2, log_level=2) as prog:
        assert "processed 2 insns" in prog.verifier_log


def test_summary_skips_statistics_lines() -> None:
    log = "0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000)\n"
    assert summarize_verifier_log(log) == "R0 !read_ok"
    assert summarize_verifier_log("") == "the verifier gave no reason"


def test_map_element_commands_round_trip() -> None:
    fd = syscall.map_create(MapType.HASH, 4, 8, 16, name="raw")
    with fd:
        key = struct.pack("<I", 7)
        assert syscall.map_lookup(int(fd), key, 8) is None
        syscall.map_update(int(fd), key, struct.pack("<Q", 99))
        assert syscall.map_lookup(int(fd), key, 8) == struct.pack("<Q", 99)
        assert syscall.map_next_key(int(fd), None, 4) == key
        assert syscall.map_next_key(int(fd), key, 4) is None
        assert syscall.map_delete(int(fd), key) is True
        assert syscall.map_delete(int(fd), key) is False


def test_batch_commands_page_through_a_map() -> None:
    with syscall.map_create(MapType.HASH, 4, 4, 1000, name="batch") as fd:
        keys = b"".join(struct.pack("<I", i) for i in range(300))
        values = b"".join(struct.pack("<I", i * 3) for i in range(300))
        assert syscall.map_update_batch(int(fd), keys, values, 300) == 300
        seen: dict[int, int] = {}
        cursor = None
        while True:
            page = syscall.map_lookup_batch(int(fd), 4, 4, 64, cursor)
            for i in range(page.count):
                (k,) = struct.unpack_from("<I", page.keys, i * 4)
                (v,) = struct.unpack_from("<I", page.values, i * 4)
                seen[k] = v
            if page.next_batch is None:
                break
            cursor = page.next_batch
        assert seen == {i: i * 3 for i in range(300)}
        assert syscall.map_delete_batch(int(fd), keys[:400], 100) == 100
        assert syscall.map_lookup(int(fd), struct.pack("<I", 0), 4) is None


def test_invalid_map_gets_the_kernels_words() -> None:
    with pytest.raises(BPFError) as caught:
        syscall.map_create(MapType.HASH, 0, 8, 16)
    assert caught.value.errno == errno.EINVAL
    assert caught.value.command == "BPF_MAP_CREATE"


def test_unsupported_feature_is_named() -> None:
    with pytest.raises(NotSupportedError) as caught:
        syscall.map_create(9999, 4, 4, 1, feature="map type 9999")
    assert "does not support map type 9999" in str(caught.value)


def test_btf_rejection_carries_the_log() -> None:
    garbage = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, 1) + b"\0"
    with pytest.raises(BTFLoadError) as caught:
        syscall.btf_load(garbage)
    assert caught.value.log


def test_backend_override_maps_errno_to_error_classes() -> None:
    def deny(cmd: int, attr: ctypes.Structure) -> int:
        return -errno.EPERM

    with syscall.override_backend(deny), pytest.raises(PermissionDeniedError) as caught:
        syscall.map_create(MapType.ARRAY, 4, 4, 1)
    assert "CAP_BPF" in str(caught.value)

    def missing(cmd: int, attr: ctypes.Structure) -> int:
        return -errno.ENOENT

    with syscall.override_backend(missing), pytest.raises(KeyNotFoundError):
        syscall.bpf(Cmd.MAP_FREEZE, syscall.MapElemAttr())


def test_eagain_is_retried() -> None:
    calls = []

    def flaky(cmd: int, attr: ctypes.Structure) -> int:
        calls.append(cmd)
        return -errno.EAGAIN if len(calls) < 3 else 42

    with syscall.override_backend(flaky):
        assert syscall.bpf(Cmd.PROG_LOAD, syscall.ProgLoadAttr()) == 42
    assert len(calls) == 3


def test_object_ids_walk_to_loaded_program() -> None:
    with Program.load(ProgType.XDP, RETURN_2, name="walk") as prog:
        wanted = prog.info().id
        ids = []
        current = 0
        while (current := syscall.next_id(Cmd.PROG_GET_NEXT_ID, current)) is not None:
            ids.append(current)
        assert wanted in ids
        with Program.from_id(wanted) as again:
            assert again.info().tag == prog.info().tag


def test_enable_stats_counts_runs() -> None:
    with Program.load(ProgType.XDP, RETURN_2) as prog, syscall.enable_stats():
        before = prog.info().run_count
        prog.test_run(bytes(64), repeat=10)
        info = prog.info()
        assert info.run_count - before == 10
        assert info.run_time_ns > 0
