"""``pykex fuzz``: the differential soak run of the compiler.

Generates extensions (:mod:`pykex.testing.progen`), one per seed, and runs
each through :func:`~pykex.testing.progen.differential`: the front end must
accept it, the kernel must load it, and the kernel and host mode (at every
optimisation level) must agree on verdicts, packets, exceptions and maps.
It prints the counts and the seed of every failure; ``--seed N --count 1
--show`` replays one.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

HELP = "soak-test the compiler with generated extensions (kernel vs host mode)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--count", type=int, default=100, help="programs to try (default 100)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this long, whatever --count says"
    )
    parser.add_argument("--big", action="store_true", help="generate 1,000-line extensions")
    parser.add_argument(
        "--host-only", action="store_true", help="compare optimisation levels in host mode only"
    )
    parser.add_argument("--show", action="store_true", help="print each program's source")
    parser.add_argument("--verbose", action="store_true", help="print every problem in full")


def run(args: argparse.Namespace) -> int:
    from pykex.testing.progen import (
        BIG,
        SMALL,
        differential,
        generate_from_seed,
        packets_from_seed,
    )

    shape = BIG if args.big else SMALL
    counts: Counter[str] = Counter()
    failed: list[int] = []
    started = time.monotonic()
    for seed in range(args.seed, args.seed + args.count):
        if args.seconds is not None and time.monotonic() - started > args.seconds:
            break
        source = generate_from_seed(seed, shape)
        if args.show:
            print(f"# seed {seed}\n{source}")
        outcome = differential(
            source, packets_from_seed(seed), filename=f"seed{seed}.py", kernel=not args.host_only
        )
        counts["generated"] += 1
        counts["accepted"] += outcome.accepted
        counts["loaded"] += outcome.loaded
        if outcome.ok:
            continue
        counts["failed"] += 1
        counts["mismatched"] += any(" differs: " in p for p in outcome.problems)
        failed.append(seed)
        shown = outcome.diagnostics[:1] + outcome.problems
        for problem in shown if args.verbose else shown[:2]:
            print(f"seed {seed}: {problem if args.verbose else problem[:300]}")
    elapsed = time.monotonic() - started
    print(
        f"generated {counts['generated']}, accepted {counts['accepted']}, "
        f"loaded {counts['loaded']}, mismatched {counts['mismatched']}, "
        f"failed {counts['failed']} in {elapsed:.1f} s"
    )
    if failed:
        print("failing seeds (replay: pykex fuzz --seed N --count 1 --show --verbose):")
        print(" ".join(map(str, failed)))
    return 1 if failed else 0
