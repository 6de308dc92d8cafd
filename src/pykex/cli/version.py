"""``pykex version``: the versions of pykex, Python and the running kernel."""

from __future__ import annotations

import argparse
import platform
from importlib.metadata import PackageNotFoundError, version

HELP = "print the versions of pykex, Python and the running kernel"


def configure(parser: argparse.ArgumentParser) -> None:
    """No options."""


def pykex_version() -> str:
    try:
        return version("pykex")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def run(args: argparse.Namespace) -> int:
    print(
        f"pykex {pykex_version()} (Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()} {platform.machine()})"
    )
    return 0
