"""The loader on pykex-built specs: globals, calls, kfuncs, and all-or-nothing failure."""

from __future__ import annotations

import struct

import pytest

from pykex.bpf import assemble, call_kfunc, exit
from pykex.elf import (
    MapSpec,
    ObjectLoadError,
    ObjectSpec,
    Variable,
    load_object,
    program_from_instructions,
    read_object,
    write_object,
)
from pykex.kernel import VerifierError
from pykex.kernel.fd import open_fds
from pykex.kernel.uapi import MapType

from .test_elf_roundtrip import sample_object

pytestmark = pytest.mark.kernel
PACKET = bytes(64)


def test_written_object_loads_runs_and_counts() -> None:
    for spec in (sample_object(), read_object(write_object(sample_object()))):
        with load_object(spec) as loaded:
            program = loaded.programs["count"]
            assert program.test_run(PACKET, repeat=5).retval == 2  # plus_one(1)
            assert loaded.maps["counts"][0] == 5
            assert struct.unpack("<Q", loaded.variable("b")) == (5,)
            assert loaded.variable("seven") == b"\x07\0\0\0"
            # The kernel accepted func and line info for both functions.
            assert program.info().btf_id != 0


def test_rodata_constant_is_known_to_the_verifier() -> None:
    # Dividing by a .rodata value is only accepted if the verifier reads it as a non-zero constant.
    code = assemble(
        """
        r1 = map_value[.rodata]+0 ll
        r2 = *(u32 *)(r1 +0)
        if r2 == 0 goto zero
        r0 = 100
        r0 /= r2
        exit
    zero:
        r0 = 0
        exit
        """
    )
    spec = ObjectSpec(
        [program_from_instructions("divide", "xdp", code)],
        maps=[MapSpec.global_data(".rodata", struct.pack("<I", 25), [Variable("d", 0, 4)])],
    )
    with load_object(read_object(write_object(spec))) as loaded:
        assert loaded.programs["divide"].test_run(PACKET).retval == 4
        assert loaded.maps[".rodata"].info().flags & 0x80


def test_kfunc_calls_get_their_btf_ids() -> None:
    code = [
        *assemble("r1 = r10\nr1 += -8\nr2 = 0\nr3 = 3"),
        call_kfunc("bpf_iter_num_new"),
        *assemble("r1 = r10\nr1 += -8"),
        call_kfunc("bpf_iter_num_destroy"),
        *assemble("r0 = 2"),
        exit(),
    ]
    spec = ObjectSpec([program_from_instructions("iterate", "xdp", code)])
    with load_object(spec) as loaded:
        assert loaded.programs["iterate"].test_run(PACKET).retval == 2
    missing = ObjectSpec(
        [program_from_instructions("p", "xdp", [call_kfunc("no_such_kfunc"), exit()])]
    )
    with pytest.raises(ObjectLoadError, match="no_such_kfunc"):
        load_object(missing)


def test_failure_closes_everything_created() -> None:
    good = program_from_instructions("good", "xdp", assemble("r0 = 2\nexit"))
    bad = program_from_instructions("bad", "xdp", assemble("r0 = *(u64 *)(r1 +4096)\nexit"))
    spec = ObjectSpec(
        [good, bad],
        maps=[
            MapSpec("counts", MapType.HASH, 4, 8, 16),
            MapSpec.global_data(".data", b"12345678", [Variable("x", 0, 8)]),
        ],
    )
    before = set(map(id, open_fds()))
    with pytest.raises(VerifierError) as failure:
        load_object(read_object(write_object(spec)))
    assert "invalid" in failure.value.log or "access" in failure.value.log
    leaked = [fd for fd in open_fds() if id(fd) not in before]
    assert leaked == []
