"""Entry point of the ``pykex`` command: subcommand dispatch and error reporting.

Errors a user can cause print one line, ``pykex: error: ...``, and exit 1.
Python tracebacks appear only with ``--debug`` or ``PYKEX_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from pykex.btf import BTFError
from pykex.kernel import BPFError
from pykex.testing import NetworkSetupError

# Subcommand modules of pykex.cli, in the order ``pykex --help`` lists them.
# A module named ``test_run`` provides the subcommand ``test-run``.
SUBCOMMANDS: tuple[str, ...] = (
    "check", "build", "disasm", "test_run", "run", "bench", "fuzz", "features", "demo",
    "version",
)

# Errors whose message is meant for the user as it stands.
_USER_ERRORS: tuple[type[BaseException], ...] = (BPFError, BTFError, NetworkSetupError, OSError)


def _load_subcommand(module_name: str) -> ModuleType:
    module = importlib.import_module(f"{__package__}.{module_name}")
    for required in ("HELP", "configure", "run"):
        if not hasattr(module, required):
            raise AttributeError(f"subcommand module {module.__name__} lacks {required}")
    return module


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pykex",
        description="Safe Linux kernel extensions written in typed Python, compiled to eBPF.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show Python tracebacks on errors (also: PYKEX_DEBUG=1)",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        module = _load_subcommand(module_name)
        command = subparsers.add_parser(
            module_name.replace("_", "-"), help=module.HELP, description=module.HELP
        )
        module.configure(command)
        command.set_defaults(run=module.run)
    return parser


def _debug_requested(args: argparse.Namespace) -> bool:
    return args.debug or os.environ.get("PYKEX_DEBUG", "") not in ("", "0")


def describe_error(error: BaseException) -> str:
    """One line for the user: what failed and, where known, what to do about it."""
    if isinstance(error, BPFError):
        return str(error)
    if isinstance(error, PermissionError):
        return f"{error}; this needs root (CAP_BPF, CAP_NET_ADMIN or CAP_SYS_ADMIN)"
    if isinstance(error, _USER_ERRORS):
        return str(error)
    return (
        f"internal error: {type(error).__name__}: {error} "
        "(this is a pykex bug; run with --debug for the traceback)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("pykex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`pykex features | head`): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:
        if _debug_requested(args):
            raise
        print(f"pykex: error: {describe_error(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
