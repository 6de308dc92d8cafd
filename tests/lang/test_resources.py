"""``with`` blocks: the kernel's rules as language errors, and what reservations do.

The behaviour runs on the IR interpreter here (host mode's engine); the
kernel side, spin locks included, is in tests/rex.
"""

from __future__ import annotations

import pytest

from pykex.ir.interp import Interpreter

from .helpers import compile_ok, first_error

PRELUDE = """
from pykex import SpinLock, PerCpuArray, comm

class Counter(Struct):
    lock: SpinLock
    count: u64

class Event(Struct):
    value: u64

counters = ArrayMap[Counter](max_entries=4)
events = RingBuffer(size=4096)
table = HashMap[u32, u64](max_entries=4)
"""


def body(text: str) -> str:
    """``text`` as the body of an XDP program after PRELUDE."""
    lines = "\n".join("    " + line for line in text.strip("\n").splitlines())
    return f"{PRELUDE}\n@xdp()\ndef prog(ctx: XdpContext) -> int:\n{lines}\n    return XDP_PASS\n"


def line_of(text: str, needle: str) -> int:
    from .helpers import source

    return next(i for i, line in enumerate(source(text).splitlines(), 1) if needle in line)


CASES = [
    ("map lookup under a lock",
     body("c = counters[0]\nwith c.lock:\n    c.count = table[1]"),
     "table[1]", "this calls the kernel helper bpf_map_lookup_elem, which is not allowed "
     "while a spin lock is held"),
    ("print under a lock",
     body("c = counters[0]\nwith c.lock:\n    print(\"x\")"),
     "print(", "this calls the kernel helper bpf_trace_printk, which is not allowed while "
     "a spin lock is held"),
    ("reservation under a lock",
     body("c = counters[0]\nwith c.lock:\n    with events.reserve(Event) as e:\n        pass"),
     "events.reserve", "this calls the kernel helper bpf_ringbuf_reserve, which is not "
     "allowed while a spin lock is held"),
    ("two locks",
     body("c = counters[0]\nd = counters[1]\nwith c.lock:\n    with d.lock:\n        pass"),
     "d.lock:", "only one spin lock can be held at a time"),
    ("lock in a local",
     body("c = Counter()\nc.count = 1"),
     "c = Counter()", "a Counter holds a SpinLock, which lives in map values only"),
    ("lock of a reservation",
     body("with events.reserve(Counter) as c:\n    with c.lock:\n        pass"),
     "with c.lock", "a SpinLock works only inside a map value"),
    ("with on something else",
     body("with ctx:\n    pass"),
     "with ctx", "`with` works on ring buffer reservations and spin locks"),
    ("reservation without a name",
     body("with events.reserve(Event):\n    pass"),
     "events.reserve", "name the reserved record"),
    ("reservation of an integer",
     body("with events.reserve(u64) as e:\n    pass"),
     "events.reserve", "reserve() takes the Struct the record is made of"),
    ("record used after its block",
     body("with events.reserve(Event) as e:\n    e.value = 1\ne.value = 2"),
     "e.value = 2", "the record e was sent when its `with` block ended"),
    ("record given another name",
     body("with events.reserve(Event) as e:\n    f = e"),
     "f = e", "a reserved record keeps the name its `with` gave it"),
    ("lock field assigned",
     body("c = counters[0]\nc.lock = 1"),
     "c.lock = 1", "a SpinLock cannot be assigned"),
    ("lock field read",
     body("c = counters[0]\nx = c.lock"),
     "x = c.lock", "a SpinLock has no value; it is held with `with c.lock:`"),
    ("lock in a per-CPU map",
     PRELUDE + "\nper_cpu = PerCpuArray[Counter](max_entries=1)\n",
     "per_cpu =", "PerCpuArray values cannot hold a SpinLock"),
    ("lock global",
     PRELUDE + "\nshared: Counter = Counter()\n",
     "shared: Counter", "a SpinLock lives in map values only"),
    ("lock local annotation",
     body("x: SpinLock = 0"),
     "x: SpinLock", "a SpinLock exists only as a field of a Struct kept in a map"),
    ("lock nested in a struct",
     PRELUDE + "\nclass Outer(Struct):\n    inner: Counter\n",
     "inner: Counter", "a SpinLock must be a direct field of the Struct stored in the map, "
     "not nested in another Struct or Array"),
    ("crash_stop outside xdp",
     PRELUDE + "\n@tc(crash_stop=True)\ndef prog(ctx: TcContext) -> int:\n    return 0\n",
     "@tc(", "@tc has no option 'crash_stop'"),
]


@pytest.mark.parametrize(("text", "needle", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_kernel_rules_are_language_errors(text: str, needle: str, message: str) -> None:
    headline = first_error(text)
    line = line_of(text, needle)
    assert headline.startswith(f"fw.py:{line}:"), headline
    assert headline.endswith(f"error: {message}"), headline


RECORDS = PRELUDE + """
@xdp(on_error=XDP_DROP)
def prog(ctx: XdpContext) -> int:
    with events.reserve(Event) as e:
        e.value = u64(len(ctx.packet))
        if ctx.packet[0] == 1:
            raise ValueError("refused")
    return XDP_PASS
"""


def _values(machine: Interpreter) -> list[int]:
    return [int.from_bytes(r[:8], "little") for r in machine.maps["events"].records]


def test_a_record_is_sent_when_its_block_ends_and_discarded_when_it_raises() -> None:
    machine = Interpreter(compile_ok(RECORDS), cpus=2)
    assert machine.run("prog", bytes(20)).retval == 2
    raised = machine.run("prog", b"\x01" + bytes(29))
    assert (raised.retval, raised.exception.kind) == (1, "ValueError")
    assert machine.run("prog", bytes(40)).retval == 2
    assert _values(machine) == [20, 40]
    assert not machine._reserved  # nothing left reserved


def test_a_full_ring_skips_the_block_and_counts_the_drop() -> None:
    machine = Interpreter(compile_ok(RECORDS), cpus=2)
    # 16 bytes per record (8-byte header); the kernel keeps the ring from filling
    # up completely, so 255 fit in 4 KiB, as a kernel run of the same program shows.
    for _ in range(300):
        assert machine.run("prog", bytes(20)).exception is None
    assert len(_values(machine)) == 255
    drops = machine.maps[".data.drops"].lookup(bytes(4), 0)
    assert int.from_bytes(drops[:8], "little") == 45


def test_records_start_zeroed() -> None:
    text = RECORDS.replace("e.value = u64(len(ctx.packet))", "pass")
    machine = Interpreter(compile_ok(text), cpus=2)
    machine.run("prog", bytes(20))
    assert _values(machine) == [0]
