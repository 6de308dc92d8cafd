"""``pykex build``: compile an extension to a BPF ELF object, or show a stage of it.

``-f elf`` (the default) writes a standard BPF object that libbpf and
bpftool load; ``ir``, ``asm`` and ``stats`` are text. Without ``-o`` the
object goes beside the source (``fw.py`` -> ``fw.o``) and text goes to
stdout; ``-o -`` always means stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pykex.compiler import OUTPUT_FORMATS

from .check import CommandError, add_opt_level, compilation, guarded

HELP = "compile an extension to a BPF ELF object (or its IR, assembly or statistics)"

STDOUT = "-"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PROG.py", help="extension source file")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="where to write (default: PROG.o for elf, stdout for text; "
                        "'-' for stdout)")
    parser.add_argument("-f", "--format", choices=list(OUTPUT_FORMATS), default="elf",
                        help="what to produce (default: elf)")
    add_opt_level(parser)
    parser.add_argument("--stats", action="store_true",
                        help="also print instructions, stack and frame bytes per program")


def default_output(source: str, output_format: str) -> str:
    return str(Path(source).with_suffix(".o")) if output_format == "elf" else STDOUT


@guarded
def run(args: argparse.Namespace) -> int:
    build = compilation(args.path, args.opt_level)
    produced = build.output(args.format)
    destination = args.output or default_output(args.path, args.format)
    if destination == STDOUT:
        if isinstance(produced, bytes):
            if sys.stdout.isatty():
                raise CommandError("refusing to write an ELF object to a terminal; use -o FILE")
            sys.stdout.flush()
            sys.stdout.buffer.write(produced)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(produced)
    else:
        write(destination, produced)
    if args.stats:
        # Keep stdout for the output itself when that is where it went.
        stream = sys.stderr if destination == STDOUT else sys.stdout
        print(build.output("stats"), end="", file=stream)
    return 0


def write(destination: str, produced: str | bytes) -> None:
    data = produced.encode() if isinstance(produced, str) else produced
    try:
        Path(destination).write_bytes(data)
    except OSError as error:
        raise CommandError(f"cannot write {destination}: {error.strerror}") from None
