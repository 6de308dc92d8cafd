"""``pykex run TOOL.py [options] [tool options]``: load a tool, attach it, show its output.

Options before the tool's path and after it mean the same; what follows the
path may also be the tool's own options (its ``options(parser)``), shown by
``pykex run TOOL.py --help``. The work is done by :mod:`pykex.runtime.runner`.
"""

from __future__ import annotations

import argparse
import sys

from pykex.runtime.runner import RunError, add_run_arguments, run_tool

HELP = "compile, load and attach a tool, stream what it emits, print its maps at the end"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tool", metavar="TOOL.py", help="the extension module to run")
    add_run_arguments(parser)
    parser.add_argument("tool_args", nargs=argparse.REMAINDER, metavar="...",
                        help="the tool's own options (see pykex run TOOL.py --help)")


def run(args: argparse.Namespace) -> int:
    given = argparse.Namespace(**{
        name: value for name, value in vars(args).items()
        if name not in ("tool", "tool_args", "run", "debug")
    })
    try:
        return run_tool(args.tool, args.tool_args, defaults=given)
    except RunError as error:
        prefix = "pykex: " if error.located else "pykex: error: "
        print(f"{prefix}{error}", file=sys.stderr)
        return 1
