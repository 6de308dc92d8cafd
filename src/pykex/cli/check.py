"""``pykex check``: report every problem of an extension without compiling it further.

Exit status 0 when each file is a valid extension; 1 when any is not, after
printing all of its diagnostics (``file:line:col: error: ...`` with the
source line, a caret and a hint). The helpers here (reading a source file,
printing diagnostics, :func:`guarded`) are shared by the other compiling
subcommands so that they all treat user errors alike.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence

from pykex.compiler import OPT_LEVELS, Compilation
from pykex.lang import CompileError, Diagnostic, check

HELP = "check extensions and print every problem found (exit 1 if any)"


class CommandError(Exception):
    """A mistake on the command line, told to the user in one line."""


def read_source(path: str) -> str:
    """The text of the extension at ``path``, or a :class:`CommandError` saying why not."""
    try:
        with open(path, encoding="utf-8") as source:
            return source.read()
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CommandError(f"{path}: is a directory, not an extension's .py file") from None
    except UnicodeDecodeError as error:
        raise CommandError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
                           ) from None
    except OSError as error:
        raise CommandError(f"{path}: cannot read: {error.strerror}") from None


def compilation(path: str, opt_level: int = 1) -> Compilation:
    """A :class:`Compilation` of the file at ``path``, read now so a missing or
    unreadable file is reported before any stage runs."""
    return Compilation(path, source=read_source(path), opt_level=opt_level)


def add_opt_level(parser: argparse.ArgumentParser) -> None:
    levels = ", ".join(f"-O{level}" for level in OPT_LEVELS)
    parser.add_argument(
        "-O", dest="opt_level", type=int, choices=OPT_LEVELS, default=max(OPT_LEVELS),
        metavar="LEVEL", help=f"optimisation level ({levels}; default -O{max(OPT_LEVELS)})",
    )


def print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    """Every diagnostic, then how many there were per file, on stderr."""
    per_file: dict[str, int] = {}
    for diagnostic in diagnostics:
        print(diagnostic, file=sys.stderr)
        per_file[diagnostic.file] = per_file.get(diagnostic.file, 0) + 1
    for file, count in per_file.items():
        print(f"{file}: {count} error{'s' if count != 1 else ''}", file=sys.stderr)


def guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run`` with the errors a user causes turned into messages and exit status 1:
    an invalid extension prints its diagnostics, a :class:`CommandError` its line.
    Anything else reaches :func:`pykex.cli.main.main`, which reports it."""

    @functools.wraps(run)
    def run_guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except CompileError as error:
            print_diagnostics(error.diagnostics)
            return 1
        except CommandError as error:
            print(f"pykex: error: {error}", file=sys.stderr)
            return 1

    return run_guarded


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PROG.py", help="extension source files")


@guarded
def run(args: argparse.Namespace) -> int:
    sources = {path: read_source(path) for path in args.paths}
    failed = False
    for path, text in sources.items():
        diagnostics = check(text, filename=path)
        if diagnostics:
            print_diagnostics(diagnostics)
            failed = True
        else:
            print(f"{path}: ok")
    return 1 if failed else 0
