"""Histograms: printed exactly as BCC prints them, read from real maps.

The reference outputs below are BCC's own, from the example files shipped
with its tools (biolatency -D, biolatency -F, runqlen, runqlen -C). Each test
reads the counts back out of the reference text, builds the histogram from
them and must print the reference text again, byte for byte.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from pykex.layout import make_struct, u32, u64
from pykex.runtime.histogram import (
    STAR_WIDTH,
    Bucket,
    HistogramSections,
    LinearHistogram,
    Log2Histogram,
    log2_slot,
)

BIOLATENCY_PER_DISK = """
Bucket disk = 'xvdb'
     usecs               : count     distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 0        |                                        |
         4 -> 7          : 0        |                                        |
         8 -> 15         : 0        |                                        |
        16 -> 31         : 0        |                                        |
        32 -> 63         : 0        |                                        |
        64 -> 127        : 0        |                                        |
       128 -> 255        : 1        |                                        |
       256 -> 511        : 33       |**********************                  |
       512 -> 1023       : 36       |************************                |
      1024 -> 2047       : 58       |****************************************|
      2048 -> 4095       : 51       |***********************************     |
      4096 -> 8191       : 21       |**************                          |
      8192 -> 16383      : 2        |*                                       |

Bucket disk = 'xvda1'
     usecs               : count     distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 0        |                                        |
         4 -> 7          : 0        |                                        |
         8 -> 15         : 0        |                                        |
        16 -> 31         : 0        |                                        |
        32 -> 63         : 0        |                                        |
        64 -> 127        : 0        |                                        |
       128 -> 255        : 0        |                                        |
       256 -> 511        : 18       |**********                              |
       512 -> 1023       : 67       |*************************************   |
      1024 -> 2047       : 35       |*******************                     |
      2048 -> 4095       : 71       |****************************************|
      4096 -> 8191       : 65       |************************************    |
      8192 -> 16383      : 65       |************************************    |
     16384 -> 32767      : 20       |***********                             |
     32768 -> 65535      : 7        |***                                     |
"""

BIOLATENCY_PER_FLAGS = """
flags = Metadata-Read
     msecs               : count     distribution
         0 -> 1          : 3        |****************************************|
         2 -> 3          : 2        |**************************              |
         4 -> 7          : 0        |                                        |
         8 -> 15         : 1        |*************                           |
        16 -> 31         : 1        |*************                           |

flags = Write
     msecs               : count     distribution
         0 -> 1          : 103      |*******************************         |
         2 -> 3          : 106      |********************************        |
         4 -> 7          : 130      |****************************************|
         8 -> 15         : 79       |************************                |
        16 -> 31         : 5        |*                                       |
        32 -> 63         : 0        |                                        |
        64 -> 127        : 0        |                                        |
       128 -> 255        : 0        |                                        |
       256 -> 511        : 1        |                                        |
"""

RUNQLEN = """\
     runqlen       : count     distribution
        0          : 1068     |****************************************|
        1          : 642      |************************                |
        2          : 369      |*************                           |
        3          : 183      |******                                  |
        4          : 104      |***                                     |
        5          : 42       |*                                       |
        6          : 13       |                                        |
        7          : 2        |                                        |
        8          : 1        |                                        |
"""

RUNQLEN_PER_CPU = """
cpu = 1
     runqlen       : count     distribution
        0          : 226      |****************************************|
        1          : 90       |***************                         |
        2          : 11       |*                                       |

cpu = 3
     runqlen       : count     distribution
        0          : 0        |                                        |
        1          : 0        |                                        |
        2          : 0        |                                        |
        3          : 0        |                                        |
        4          : 0        |                                        |
        5          : 0        |                                        |
        6          : 0        |                                        |
        7          : 327      |****************************************|
"""

_LOG2_ROW = re.compile(r"^\s+(\d+) -> (\d+)\s+: (\d+)\s+\|")
_LINEAR_ROW = re.compile(r"^\s+(\d+)\s+: (\d+)\s+\|")
_SECTION = re.compile(r"^(.*) = (.*)$")


def _sections_in(text: str, row: re.Pattern[str]) -> tuple[str, dict[str, dict[int, int]]]:
    """(section header, {section label: {slot: count}}) read from BCC's output."""
    header, sections, current = "", {}, None
    for line in text.splitlines():
        if (section := _SECTION.match(line)) and "->" not in line and "|" not in line:
            header, label = section.groups()
            current = sections[label] = {}
        elif (match := row.match(line)) and current is not None:
            current.update(_slot_count(match))
    return header, sections


def _slot_count(match: re.Match[str]) -> dict[int, int]:
    if len(match.groups()) == 3:  # log2: the row's high end is 2**slot - 1
        return {int(match.group(2)).bit_length(): int(match.group(3))}
    return {int(match.group(1)): int(match.group(2))}


def _count_column(line: str) -> int:
    return int(line.split(":")[1].split("|")[0])


def test_log2_slots_are_bit_lengths() -> None:
    values = (0, 1, 2, 3, 4, 7, 8, 1023, 1024)
    assert [log2_slot(v) for v in values] == [0, 1, 2, 2, 3, 3, 4, 10, 11]
    assert log2_slot(2**64 - 1) == 64
    with pytest.raises(ValueError, match="non-negative"):
        log2_slot(-1)


def test_per_disk_log2_sections_print_as_bcc() -> None:
    header, parsed = _sections_in(BIOLATENCY_PER_DISK, _LOG2_ROW)
    assert header == "Bucket disk" and len(parsed) == 2
    counts = {(label.strip("'"), slot): n
              for label, per_slot in parsed.items() for slot, n in per_slot.items()}
    sections = HistogramSections.from_counts(counts, Log2Histogram, val_type="usecs",
    )
    text = sections.format(section_header="Bucket disk", sort=lambda keys: keys)
    assert text == BIOLATENCY_PER_DISK


def test_section_labels_formatted_by_the_caller() -> None:
    header, parsed = _sections_in(BIOLATENCY_PER_FLAGS, _LOG2_ROW)
    flags = {label: i for i, label in enumerate(parsed)}  # sections keyed by a number
    sections = HistogramSections.from_counts(
        {(flags[label], slot): n for label, counts in parsed.items() for slot, n in counts.items()},
        Log2Histogram, val_type="msecs",
    )
    names = {number: label for label, number in flags.items()}
    assert sections.format(section_header=header, section_format=names.__getitem__) == (
        BIOLATENCY_PER_FLAGS
    )


def test_linear_histogram_prints_as_bcc() -> None:
    counts = {}
    for line in RUNQLEN.splitlines()[1:]:
        counts.update(_slot_count(_LINEAR_ROW.match(line)))
    assert LinearHistogram.from_counts(counts, val_type="runqlen").format() == RUNQLEN


def test_linear_sections_keyed_by_int_print_its_repr() -> None:
    _, parsed = _sections_in(RUNQLEN_PER_CPU, _LINEAR_ROW)
    sections = HistogramSections.from_counts(
        {(int(cpu), slot): n for cpu, counts in parsed.items() for slot, n in counts.items()},
        LinearHistogram, val_type="runqlen",
    )
    assert sections.format(section_header="cpu") == RUNQLEN_PER_CPU


def test_rows_columns_and_bar() -> None:
    hist = Log2Histogram.from_counts({3: 5, 5: 20}, val_type="usecs")
    lines = hist.format().splitlines()
    assert lines[0] == "     usecs               : count     distribution"
    assert lines[1] == "         0 -> 1          : 0        |" + " " * 40 + "|"
    assert lines[3] == "         4 -> 7          : 5        |" + "*" * 10 + " " * 30 + "|"
    assert lines[5] == "        16 -> 31         : 20       |" + "*" * 40 + "|"
    assert len(lines) == 6  # nothing printed past the last non-empty slot
    # Every bar is proportional to its count, rounded down, within the frame.
    for bucket, line in zip(hist.buckets(), lines[1:], strict=True):
        bar = line.split("|")[1]
        assert len(bar) == STAR_WIDTH
        assert bar.count("*") == STAR_WIDTH * bucket.count // 20


def test_strip_leading_zero_skips_only_leading_empty_rows() -> None:
    hist = Log2Histogram.from_counts({4: 1, 6: 2})
    lines = hist.format(strip_leading_zero=True).splitlines()
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["8 -> 15", "16 -> 31", "32 -> 63"]
    assert _count_column(lines[2]) == 0  # the empty row between stays


def test_wide_layout_past_slot_32() -> None:
    hist = Log2Histogram.from_counts({2: 1, 40: 4}, val_type="nsecs")
    lines = hist.format().splitlines()
    assert lines[0] == "               nsecs                         : count     distribution"
    assert len(lines) == 41
    low, high = 2**39, 2**40 - 1
    assert lines[40] == f"{low:>20} -> {high:<20} : 4        |{'*' * 20}|"
    assert lines[2] == f"{2:>20} -> {3:<20} : 1        |{'*' * 5:<20}|"


def test_zero_is_counted_in_the_first_row() -> None:
    hist = Log2Histogram()
    for value in (0, 0, 1, 5):
        hist.record(value)
    assert hist[0] == 2 and hist[1] == 1 and hist[3] == 1
    assert hist.buckets() == [Bucket(0, 1, 3), Bucket(2, 3, 0), Bucket(4, 7, 1)]
    only_zero = Log2Histogram.from_counts({0: 4})
    assert only_zero.buckets() == [Bucket(0, 1, 4)]
    assert "0 -> 1" in only_zero.format()


def test_empty_histograms_print_nothing() -> None:
    assert Log2Histogram().format() == ""
    assert LinearHistogram.from_counts([0, 0, 0]).format() == ""


def test_print_writes_format() -> None:
    out = io.StringIO()
    hist = LinearHistogram.from_counts([1, 0, 3])
    hist.print(out)
    assert out.getvalue() == hist.format()


def test_json_matches_bcc_shape() -> None:
    hist = Log2Histogram.from_counts({1: 2, 3: 7}, val_type="usecs")
    obj = json.loads(hist.to_json(ts=0))
    assert obj["val_type"] == "usecs"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", obj["ts"])
    assert obj["data"] == [
        {"interval-start": 0, "interval-end": 1, "count": 2},
        {"interval-start": 2, "interval-end": 3, "count": 0},
        {"interval-start": 4, "interval-end": 7, "count": 7},
    ]
    sections = HistogramSections.from_counts({(b"sda", 1): 1, (b"vdb", 2): 3}, Log2Histogram)
    lines = sections.to_json(section_header="disk").splitlines()
    assert [json.loads(line)["disk"] for line in lines] == ["sda", "vdb"]


def test_histograms_compare_by_counts() -> None:
    a = Log2Histogram.from_counts([0, 1, 0, 2])
    assert a == Log2Histogram.from_counts({1: 1, 3: 2})
    assert a != Log2Histogram.from_counts({1: 1})
    assert a.total == 3 and a.counts == {1: 1, 3: 2}


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        Log2Histogram.from_counts({-1: 3})
    with pytest.raises(ValueError, match="counts"):
        Log2Histogram.from_counts({1: -3})
    with pytest.raises(TypeError, match="slot_field"):
        Log2Histogram.from_map({make_struct("K", [("pid", u32), ("slot", u32)])(1, 2): 1})
    with pytest.raises(TypeError, match="section"):
        HistogramSections.from_map({3: 1}, Log2Histogram)
    with pytest.raises(TypeError, match="no field 'slot'"):
        Log2Histogram.from_map({3: 1}, slot_field="slot")


Key = make_struct("DiskSlot", [("disk", u32), ("slot", u32)])


def test_from_plain_mapping_and_struct_keys() -> None:
    counts = {Key(8, 3): 4, Key(8, 4): 1, Key(16, 3): 2}
    sections = HistogramSections.from_map(counts, Log2Histogram, val_type="usecs")
    assert sorted(sections) == [8, 16]
    assert sections[8].counts == {3: 4, 4: 1}
    merged = Log2Histogram.from_map(counts, slot_field="slot")
    assert merged.counts == {3: 6, 4: 1}
    by_parity = HistogramSections.from_map(counts, Log2Histogram, section_fn=lambda d: d % 3)
    assert by_parity[2].counts == {3: 4, 4: 1} and by_parity[1].counts == {3: 2}


@pytest.mark.kernel
def test_from_kernel_maps_sums_per_cpu_values() -> None:
    from pykex.kernel.maps import HashMap, PerCpuArrayMap

    with PerCpuArrayMap.create(u64, 8, name="lat") as per_cpu:
        cpus = per_cpu.cpus
        per_cpu[2] = [1] * cpus
        per_cpu[5] = list(range(cpus))
        hist = Log2Histogram.from_map(per_cpu, val_type="usecs")
    assert hist.counts == {2: cpus, **({5: sum(range(cpus))} if cpus > 1 else {})}
    assert _count_column(hist.format().splitlines()[2]) == cpus

    with HashMap.create(Key, u64, 64, name="disk_lat") as by_disk:
        by_disk[Key(259, 10)] = 7
        by_disk[Key(259, 11)] = 1
        by_disk[Key(8, 2)] = 3
        sections = HistogramSections.from_map(by_disk, Log2Histogram, val_type="usecs")
    assert sections[259].counts == {10: 7, 11: 1}
    assert sections[8].counts == {2: 3}
    text = sections.format(section_header="disk")
    assert text.index("disk = 8\n") < text.index("disk = 259\n")


def test_per_cpu_lists_are_summed() -> None:
    assert Log2Histogram.from_map({1: [1, 2], 4: [0, 5]}).counts == {1: 3, 4: 5}
    with pytest.raises(TypeError, match="integers"):
        Log2Histogram.from_map({1: "3"})
