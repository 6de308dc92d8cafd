"""Typed maps against the real kernel: every kind, through the Python protocol."""

from __future__ import annotations

import errno
import ipaddress
import os
import struct
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pykex.btf import Builder, Member
from pykex.kernel import (
    BPFError,
    NotSupportedError,
    PermissionDeniedError,
    Program,
    ProgType,
    load_btf,
    syscall,
)
from pykex.kernel.cpus import parse_cpu_list, possible_cpus
from pykex.kernel.errors import ENOTSUPP
from pykex.kernel.maps import (
    ArrayMap,
    HashMap,
    KeyedMap,
    LpmKey,
    LpmTrieMap,
    LruHashMap,
    LruPerCpuHashMap,
    Map,
    MapSpec,
    PerCpuArrayMap,
    PerCpuHashMap,
    PerfEventArrayMap,
    ProgArrayMap,
    QueueMap,
    RingBufMap,
    StackMap,
    StackTraceMap,
    create_map,
    sum_per_cpu,
)
from pykex.kernel.program import MapRelocation
from pykex.kernel.uapi import Cmd, MapFlag, MapType, UpdateFlag
from pykex.layout import Array, Struct, be16, be32, u8, u16, u32, u64

pytestmark = pytest.mark.kernel

CPUS = len(possible_cpus())


class Counter(Struct):
    packets: u64
    bytes: u64


class FlowKey(Struct):
    addr: Array[u8, 16]
    port: be16


def insn(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", opcode, dst | src << 4, off, imm)


RETURN_2 = insn(0xB7, imm=2) + insn(0x95)  # r0 = 2; exit


def unique_pin_name() -> str:
    return f"pykex_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"


# -- hash kinds ----------------------------------------------------------------------------


def test_hash_map_speaks_the_mapping_protocol() -> None:
    with HashMap.create(u32, Counter, 64, name="counts") as counts:
        assert len(counts) == 0 and counts.items() == []
        counts[7] = Counter(packets=1)
        counts[8] = (2, 20)
        counts[9] = {"bytes": 5}
        assert counts[7] == Counter(1, 0) and counts[8] == Counter(2, 20)
        assert counts[9].bytes == 5
        assert len(counts) == 3
        assert 7 in counts and 10 not in counts
        with pytest.raises(KeyError):
            counts[10]
        assert counts.get(10) is None and counts.get(10, "none") == "none"
        assert sorted(counts) == [7, 8, 9] == sorted(counts.keys())
        assert sorted(counts.items()) == [(7, Counter(1, 0)), (8, Counter(2, 20)),
                                          (9, Counter(0, 5))]
        assert Counter(2, 20) in counts.values()
        del counts[9]
        with pytest.raises(KeyError):
            del counts[9]
        assert counts.pop(8) == Counter(2, 20)
        assert counts.pop(8, None) is None
        with pytest.raises(KeyError):
            counts.lookup_and_delete(8)
        assert counts.lookup_and_delete(7) == Counter(1, 0)
        assert len(counts) == 0
        counts.update({1: (1, 1), 2: (2, 2)})
        counts.update([(3, (3, 3))])
        assert len(counts) == 3
        counts.clear()
        assert len(counts) == 0


def test_update_flags_and_a_full_map() -> None:
    with HashMap.create(u32, u32, 2, name="small") as small:
        small.put(1, 10, UpdateFlag.NOEXIST)
        with pytest.raises(BPFError) as exists:
            small.put(1, 11, UpdateFlag.NOEXIST)
        assert exists.value.errno == errno.EEXIST
        with pytest.raises(KeyError):
            small.put(2, 20, UpdateFlag.EXIST)
        small[2] = 20
        with pytest.raises(BPFError, match=r"map 'small' is full \(2 entries\)"):
            small[3] = 30


def test_struct_keys() -> None:
    with HashMap.create(FlowKey, u64, 16, name="flows") as flows:
        key = FlowKey(addr=ipaddress.ip_address("2001:db8::1").packed, port=443)
        flows[key] = 1
        flows[(bytes(16), 80)] = 2
        assert flows[key] == 1
        assert flows[{"port": 80}] == 2
        assert dict(flows.items()) == {key: 1, FlowKey(port=80): 2}


ENTRIES = 10_000


@pytest.mark.parametrize("kind", [HashMap, LruHashMap, PerCpuHashMap, LruPerCpuHashMap],
                         ids=lambda k: k.__name__)
def test_ten_thousand_entries_read_back_by_batch_and_by_walk(kind: type[KeyedMap]) -> None:
    # LRU maps evict before they are full (per-CPU free lists), so give them room.
    with kind.create(u32, u64, 2 * ENTRIES, name="bulk") as bulk:
        written = {i * 7919 % 2**32: i * 3 for i in range(ENTRIES)}
        bulk.update(written)
        per_cpu = kind in (PerCpuHashMap, LruPerCpuHashMap)
        expected = {k: [v] * CPUS for k, v in written.items()} if per_cpu else written
        assert len(bulk) == ENTRIES
        assert dict(bulk.batch_items(chunk=97)) == expected
        assert dict(bulk.walk_items()) == expected
        assert dict(bulk.items()) == expected
        bulk.clear()
        assert len(bulk) == 0


def test_kernels_without_batches_fall_back_to_walking() -> None:
    batch_commands = {Cmd.MAP_LOOKUP_BATCH, Cmd.MAP_UPDATE_BATCH, Cmd.MAP_DELETE_BATCH}

    def kernel_without_batches(cmd: int, attr: Any) -> int:
        if cmd in batch_commands:
            return -ENOTSUPP
        return syscall._kernel_backend(cmd, attr)

    with HashMap.create(u32, u32, 64, name="old") as old, \
            syscall.override_backend(kernel_without_batches):
        old.update({i: i * i for i in range(50)})
        assert dict(old.items()) == {i: i * i for i in range(50)}
        assert len(old) == 50
        with pytest.raises(NotSupportedError, match="batch lookups of hash maps"):
            next(old.batch_items())
        old.clear()
        assert len(old) == 0


# -- arrays ----------------------------------------------------------------------------------


def test_array_map_holds_every_index() -> None:
    with ArrayMap.create(Counter, 8, name="slots") as slots:
        assert len(slots) == 8
        assert slots.items() == [(i, Counter()) for i in range(8)]
        slots[3] = Counter(packets=9)
        assert slots[3].packets == 9
        assert 7 in slots and 8 not in slots
        with pytest.raises(IndexError, match=r"index 8 out of range for map 'slots' \(8 entries\)"):
            slots[8]
        with pytest.raises(IndexError):
            slots[8] = Counter()
        with pytest.raises(TypeError, match="cannot be deleted"):
            del slots[3]
        slots.clear()
        assert slots[3] == Counter()


def test_array_map_batch_read_of_ten_thousand() -> None:
    with ArrayMap.create(u32, ENTRIES, name="big") as big:
        big.update((i, i ^ 0x5A5A) for i in range(ENTRIES))
        assert big.items() == [(i, i ^ 0x5A5A) for i in range(ENTRIES)]
        assert big.walk_items().__next__() == (0, 0x5A5A)


# -- per-CPU -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [PerCpuArrayMap, PerCpuHashMap, LruPerCpuHashMap],
                         ids=lambda k: k.__name__)
def test_per_cpu_values_are_one_per_possible_cpu(kind: type[Any]) -> None:
    if kind is PerCpuArrayMap:
        made = kind.create(Counter, 4, name="pcpu")
    else:
        made = kind.create(u32, Counter, 16, name="pcpu")
    with made as per_cpu:
        # Counter is 16 bytes: no padding. A u8 map below checks the 8-byte stride.
        per_cpu[1] = [Counter(packets=i + 1, bytes=10 * (i + 1)) for i in range(CPUS)]
        values = per_cpu[1]
        assert len(values) == CPUS == per_cpu.cpus
        assert values == [Counter(i + 1, 10 * (i + 1)) for i in range(CPUS)]
        total = per_cpu.sum(1)
        assert (total.packets, total.bytes) == (sum(range(1, CPUS + 1)),
                                                10 * sum(range(1, CPUS + 1)))
        per_cpu[2] = Counter(packets=5)
        assert per_cpu[2] == [Counter(packets=5)] * CPUS
        with pytest.raises(ValueError, match=f"must list {CPUS} values"):
            per_cpu[1] = [Counter()] * (CPUS + 1)


def test_per_cpu_small_values_are_padded_to_eight_bytes() -> None:
    with PerCpuHashMap.create(u32, u8, 4, name="bytes") as small:
        small[1] = list(range(1, CPUS + 1))
        assert small[1] == list(range(1, CPUS + 1))
        assert small.sum(1) == sum(range(1, CPUS + 1))
        assert dict(small.items()) == {1: list(range(1, CPUS + 1))}


def test_sum_per_cpu_adds_fields_and_arrays() -> None:
    assert sum_per_cpu([1, 2, 3]) == 6
    assert sum_per_cpu([Counter(1, 2), Counter(3, 4)]) == Counter(4, 6)
    assert sum_per_cpu([[1, 2], [3, 4]]) == [4, 6]
    big = sum_per_cpu([Counter(2**64 - 1, 0), Counter(1, 0)])
    assert big.packets == 2**64  # totals are Python ints


@pytest.mark.parametrize(("text", "cpus"), [("0", [0]), ("0-1\n", [0, 1]),
                                             ("0,2-3,7", [0, 2, 3, 7])])
def test_cpu_lists_parse(text: str, cpus: list[int]) -> None:
    assert parse_cpu_list(text) == cpus


# -- LPM trie --------------------------------------------------------------------------------


def test_lpm_trie_matches_the_longest_prefix() -> None:
    with LpmTrieMap.create(4, u32, 16, name="routes") as routes:
        assert routes.flags & MapFlag.NO_PREALLOC
        routes[ipaddress.ip_network("10.0.0.0/8")] = 8
        routes[(24, bytes([10, 1, 2, 0]))] = 24
        assert routes[ipaddress.ip_address("10.1.2.3")] == 24
        assert routes[ipaddress.ip_address("10.9.9.9")] == 8
        assert routes[LpmKey(16, bytes([10, 1, 0, 0]))] == 8
        assert ipaddress.ip_address("11.0.0.1") not in routes
        with pytest.raises(KeyError):
            routes[ipaddress.ip_address("192.168.0.1")]
        assert sorted(routes.items()) == [
            (LpmKey(8, bytes([10, 0, 0, 0])), 8),
            (LpmKey(24, bytes([10, 1, 2, 0])), 24),
        ]
        assert len(routes) == 2
        del routes[ipaddress.ip_network("10.1.2.0/24")]
        assert routes[ipaddress.ip_address("10.1.2.3")] == 8
        with pytest.raises(ValueError, match=r"prefix length for map 'routes' must be 0\.\.32"):
            routes[(33, bytes(4))] = 1
        with pytest.raises(ValueError, match="key data for map 'routes' must be Bytes"):
            routes[(8, b"\x0a\x00\x00")] = 1
        with pytest.raises(TypeError, match="LpmKey"):
            routes["10.0.0.0/8"] = 1


def test_lpm_trie_with_typed_data_and_no_batches() -> None:
    with LpmTrieMap.create(be32, u8, 4, name="typed") as routes:
        routes[(16, 0xC0A80000)] = 1  # 192.168.0.0/16
        assert routes[(32, 0xC0A80101)] == 1
        assert routes.keys() == [LpmKey(16, 0xC0A80000)]
        with pytest.raises(NotSupportedError, match="batch lookups of lpm_trie maps"):
            next(routes.batch_items())
        with LpmTrieMap.from_id(routes.info().id) as untyped:
            assert untyped.keys() == [LpmKey(16, b"\xc0\xa8\x00\x00")]


def test_lpm_trie_over_ipv6_with_struct_values() -> None:
    with LpmTrieMap.create(16, Counter, 8, name="routes6") as routes:
        routes[ipaddress.ip_network("2001:db8::/32")] = Counter(packets=32)
        routes[ipaddress.ip_network("2001:db8:1::/48")] = Counter(packets=48)
        assert routes[ipaddress.ip_address("2001:db8:1::5")].packets == 48
        assert routes[ipaddress.ip_address("2001:db8:2::5")].packets == 32


# -- queue and stack ------------------------------------------------------------------------


def test_queue_is_first_in_first_out() -> None:
    with QueueMap.create(u32, 3, name="fifo") as fifo:
        for value in (1, 2, 3):
            fifo.push(value)
        with pytest.raises(BPFError, match="is full"):
            fifo.push(4)
        fifo.push(4, overwrite=True)  # drops the oldest
        assert fifo.peek() == 2
        assert [fifo.pop(), fifo.pop(), fifo.pop()] == [2, 3, 4]
        assert fifo.pop(None) is None
        with pytest.raises(IndexError, match="pop from empty map 'fifo'"):
            fifo.pop()


def test_stack_is_last_in_first_out() -> None:
    with StackMap.create(Counter, 4, name="lifo") as lifo:
        lifo.push(Counter(1, 1))
        lifo.push((2, 2))
        assert lifo.peek() == Counter(2, 2)
        assert [lifo.pop(), lifo.pop()] == [Counter(2, 2), Counter(1, 1)]
        with pytest.raises(IndexError, match="peek into empty map 'lifo'"):
            lifo.peek()


# -- clear errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda m: m[b"abc"], ValueError,
         "key for map 'counts' must be u32 (4 bytes), got bytes of length 3"),
        (lambda m: m.get("7"), TypeError,
         "key for map 'counts' must be u32 (an integer), got str '7'"),
        (lambda m: m.__setitem__(-1, (1, 2)), OverflowError,
         "key for map 'counts' must be u32 (0..4294967295), got -1"),
        (lambda m: m.__setitem__(1, (1, -2)), OverflowError,
         "value for map 'counts': Counter.bytes must be u64 (0..18446744073709551615), got -2"),
        (lambda m: m.__setitem__(1, (1,)), TypeError,
         "value for map 'counts' must be Counter (2 fields), got tuple of 1 values"),
        (lambda m: m.__setitem__(1, bytes(15)), ValueError,
         "value for map 'counts' must be Counter (16 bytes), got bytes of length 15"),
        (lambda m: m.update({1: 5}), TypeError,
         "value for map 'counts' must be Counter (a Counter, tuple or dict), got 5"),
    ],
)
def test_wrong_shapes_get_clear_errors(action: Callable[[HashMap], Any], error: type,
                                       message: str) -> None:
    with HashMap.create(u32, Counter, 4, name="counts") as counts:
        with pytest.raises(error) as caught:
            action(counts)
        assert str(caught.value) == message


def test_raw_bytes_of_the_exact_size_are_accepted() -> None:
    with HashMap.create(4, 8, 4, name="raw") as raw:
        raw[b"\x01\x00\x00\x00"] = bytes(range(8))
        assert raw.items() == [(b"\x01\x00\x00\x00", bytes(range(8)))]
    with HashMap.create(u32, u64, 4, name="typed") as typed:
        typed[(5).to_bytes(4, "little")] = (6).to_bytes(8, "little")
        assert typed[5] == 6


def test_rejected_parameters_are_told_apart_from_missing_kinds() -> None:
    with pytest.raises(BPFError, match="rejected lru_hash map 'nopre'") as caught:
        LruHashMap.create(u32, u32, 4, name="nopre", flags=MapFlag.NO_PREALLOC)
    assert not isinstance(caught.value, NotSupportedError)

    def kernel_without_map_kinds(cmd: int, attr: Any) -> int:
        return -errno.EINVAL

    with (
        syscall.override_backend(kernel_without_map_kinds),
        pytest.raises(NotSupportedError) as missing,
    ):
        QueueMap.create(u32, 4, name="q")
    assert missing.value.feature == "map type queue"
    assert "does not support map type queue" in str(missing.value)


# -- opening existing maps ------------------------------------------------------------------------


def test_pin_and_open_the_pin() -> None:
    name = unique_pin_name()
    with HashMap.create(u32, Counter, 8, name="pinned") as original:
        original[1] = Counter(3, 4)
        path = original.pin(name)
        try:
            assert path == f"/sys/fs/bpf/{name}"
            with Map.from_pin(path, key_type=u32, value_type=Counter) as again:
                assert isinstance(again, HashMap)
                assert again[1] == Counter(3, 4)
                again[2] = Counter(5, 6)
            assert original[2] == Counter(5, 6)
            with HashMap.from_pin(name) as untyped:  # types default from sizes
                assert untyped.key_type is u32
                assert untyped[1] == bytes(Counter(3, 4))
            with pytest.raises(TypeError, match="is a hash map, not ArrayMap"):
                ArrayMap.from_pin(name)
            with pytest.raises(ValueError, match="value type u64 is 8 bytes, but map 'pinned' "
                                                 "has 16-byte values"):
                Map.from_pin(name, value_type=u64)
        finally:
            os.unlink(path)
    assert not os.path.exists(path)


def test_from_fd_duplicates_ints_and_takes_over_fds() -> None:
    with ArrayMap.create(u32, 2, name="shared") as shared:
        shared[1] = 11
        with Map.from_fd(int(shared.fd), value_type=u32) as view:
            assert view[1] == 11
            assert int(view.fd) != int(shared.fd)
        assert shared[1] == 11  # our descriptor is still open
        handed_over = shared.fd.dup()
        view = Map.from_fd(handed_over)
        assert view.fd is handed_over
        view.close()
        assert handed_over.closed


def spec_for(kind: MapType) -> MapSpec:
    specs = {
        MapType.LPM_TRIE: MapSpec(kind, 8, u32, 4),  # NO_PREALLOC is added
        MapType.QUEUE: MapSpec(kind, None, u32, 4),
        MapType.STACK: MapSpec(kind, None, u32, 4),
        MapType.RINGBUF: MapSpec(kind, None, None, 4096),
        MapType.STACK_TRACE: MapSpec(kind, u32, Array[u64, 8], 4),
    }
    return specs.get(kind, MapSpec(kind, u32, u32, 4))


KINDS = [HashMap, ArrayMap, PerCpuHashMap, PerCpuArrayMap, LruHashMap, LruPerCpuHashMap,
         LpmTrieMap, RingBufMap, PerfEventArrayMap, ProgArrayMap, QueueMap, StackMap,
         StackTraceMap]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_from_id_picks_the_class_of_the_kind(kind: type[Map]) -> None:
    assert kind.map_type is not None
    with create_map(spec_for(kind.map_type)) as made:
        assert type(made) is kind
        info = made.info()
        assert info.type == kind.map_type
        with Map.from_id(info.id) as opened:
            assert type(opened) is kind
            assert opened.info() == info


def test_info_reports_the_map() -> None:
    with HashMap.create(u32, Counter, 32, name="described", flags=MapFlag.NO_PREALLOC) as m:
        info = m.info()
        assert (info.type, info.name, info.key_size, info.value_size, info.max_entries) == (
            MapType.HASH, "described", 4, 16, 32
        )
        assert info.flags == MapFlag.NO_PREALLOC
        assert info.id > 0 and info.btf_id == 0


def test_frozen_maps_refuse_writes_from_user_space() -> None:
    with ArrayMap.create(u32, 2, name="frozen") as frozen:
        frozen[0] = 5
        frozen.freeze()
        with pytest.raises(PermissionDeniedError, match="'frozen' is read-only from user space"):
            frozen[0] = 6
        assert frozen[0] == 5


def test_values_with_a_spin_lock_take_btf() -> None:
    class Locked(Struct):
        lock: u32  # struct bpf_spin_lock, as BTF tells the kernel
        count: u32

    btf = Builder()
    u32_id = btf.add_int("unsigned int", 4)
    lock_id = btf.add_spin_lock()
    value_id = btf.add_struct("locked", 8, [Member("lock", lock_id, 0),
                                            Member("count", u32_id, 32)])
    with load_btf(btf.emit()) as btf_fd, HashMap.create(
        u32, Locked, 4, name="locked", btf_fd=int(btf_fd),
        btf_key_type_id=u32_id, btf_value_type_id=value_id,
    ) as locked:
        assert locked.info().btf_value_type_id == value_id
        locked.put(1, Locked(count=7), UpdateFlag.LOCK)  # EINVAL without a lock in BTF
        assert locked[1].count == 7
    with HashMap.create(u32, Locked, 4, name="unlocked") as unlocked, pytest.raises(BPFError):
        unlocked.put(1, Locked(count=7), UpdateFlag.LOCK)


# -- kinds whose values are kernel objects ------------------------------------------------------


def test_prog_array_stores_programs_and_reads_their_ids() -> None:
    with ProgArrayMap.create(4, name="jumps") as jumps, \
            Program.load(ProgType.XDP, RETURN_2, name="target") as target:
        assert len(jumps) == 0
        jumps[2] = target
        assert jumps[2] == target.info().id
        assert len(jumps) == 1 and jumps.keys() == [2]
        jumps[3] = int(target.fd)
        assert jumps.items() == [(2, target.info().id), (3, target.info().id)]
        del jumps[2]
        assert jumps.keys() == [3]
        with pytest.raises(TypeError, match="must be a file descriptor"):
            jumps[0] = "prog"


def test_stack_trace_map_returns_instruction_pointers() -> None:
    # A raw tracepoint program run by BPF_PROG_TEST_RUN records its own
    # kernel stack with bpf_get_stackid(ctx, map, 0).
    code = (
        insn(0x18, dst=2) + insn(0)  # r2 = map (64-bit load, filled by relocation)
        + insn(0xB7, dst=3, imm=0)  # r3 = 0: kernel stack
        + insn(0x85, imm=27)  # call bpf_get_stackid
        + insn(0xB7, imm=0) + insn(0x95)
    )
    with StackTraceMap.create(8, depth=32, name="stacks") as stacks:
        assert stacks.depth == 32
        with Program.load(ProgType.RAW_TRACEPOINT, code, name="stackid",
                          relocations=[MapRelocation(0, "stacks")],
                          maps={"stacks": int(stacks.fd)}) as prog:
            syscall.prog_test_run(int(prog.fd), repeat=0, ctx_out_size=0)
        traces = stacks.items()
        assert len(traces) == 1
        stack_id, frames = traces[0]
        assert 0 < len(frames) <= 32
        assert all(ip >= 0xFFFF800000000000 for ip in frames)  # kernel text
        assert stacks[stack_id] == frames
        with pytest.raises(TypeError, match="filled by programs"):
            stacks[0] = [1]
        del stacks[stack_id]
        assert len(stacks) == 0


def test_ring_buffer_size_must_be_a_power_of_two_pages() -> None:
    with RingBufMap.create(1 << 16, name="events") as events:
        assert events.size == events.info().max_entries == 1 << 16
    for bad in (1000, 3 * 4096, 0):
        with pytest.raises(ValueError, match="power of two and a multiple of the page size"):
            RingBufMap.create(bad)


def test_perf_event_array_has_a_slot_per_cpu() -> None:
    with PerfEventArrayMap.create(name="perf") as perf:
        assert perf.max_entries == max(possible_cpus()) + 1
        with pytest.raises(IndexError):
            perf[perf.max_entries] = 0
        not_perf = os.open("/dev/null", os.O_RDONLY)
        try:
            with pytest.raises(BPFError):
                perf[0] = not_perf
        finally:
            os.close(not_perf)


def test_fd_is_closed_with_the_map() -> None:
    m = HashMap.create(u16, u16, 2, name="closing")
    number = int(m.fd)
    m.close()
    assert m.fd.closed
    with pytest.raises(OSError):
        os.fstat(number)
