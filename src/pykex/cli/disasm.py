"""``pykex disasm``: the BPF instructions of an extension, under the Python lines
they come from.

Each program starts with a header line (name, kind, section, ``on_error``
verdict, instruction count); each run of instructions generated from one
source line is preceded by ``; file:line  text``. The listing is accepted by
:func:`pykex.bpf.assemble`.
"""

from __future__ import annotations

import argparse

from pykex.bpf import disassemble
from pykex.compiler import section_name

from .check import CommandError, add_opt_level, compilation, guarded

HELP = "print an extension's BPF instructions annotated with its Python source lines"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PROG.py", help="extension source file")
    parser.add_argument("-p", "--program", metavar="NAME", action="append",
                        help="only this program (may be repeated; default: all)")
    parser.add_argument("--slots", action="store_true",
                        help="number each instruction by its slot, as the verifier log does")
    add_opt_level(parser)


@guarded
def run(args: argparse.Namespace) -> int:
    programs = compilation(args.path, args.opt_level).compiled.programs
    names = [program.name for program in programs]
    wanted = args.program or names
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise CommandError(
            f"{args.path} has no program {unknown[0]!r} (programs: {', '.join(names) or 'none'})"
        )
    listings = []
    for program in programs:
        if program.name not in wanted:
            continue
        slots = program.encode().slot_count
        header = (
            f"; program {program.name}: {program.kind.name}, section {section_name(program)}, "
            f"on_error={program.on_error}, {slots} instructions"
        )
        body = disassemble(program.instructions, source=True, slots=args.slots)
        listings.append(f"{header}\n{body}")
    print("\n".join(listings), end="")
    return 0
