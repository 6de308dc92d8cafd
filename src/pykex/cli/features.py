"""``pykex features``: what this kernel supports, probed by trying each feature."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import textwrap

from pykex.kernel import features

HELP = "probe what this kernel supports (program and map types, hooks, kfuncs, ...)"

# Categories where the feature's name says it all; elsewhere the description helps.
_NAME_SAYS_IT_ALL = {"program", "map"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for programs to read")


def run(args: argparse.Namespace) -> int:
    found = features.probe_all()
    if args.json:
        document = {
            "kernel": platform.release(),
            "features": {f.name: f.as_dict() for f in found},
        }
        print(json.dumps(document, indent=2))
    else:
        print(format_table(found, _marks(sys.stdout)))
    return 0


def _marks(stream: object) -> tuple[str, str]:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "✓✗".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "+", "-"
    return "✓", "✗"


def format_table(found: list[features.Feature], marks: tuple[str, str] = ("✓", "✗")) -> str:
    """Features grouped by category: a mark, the name, and why when missing.

    Program and map types are many and their names say it all, so the
    available ones share wrapped lines; every missing feature gets a line of
    its own with the kernel's reason.
    """
    yes, no = marks
    width = max(len(_short(f)) for f in found)
    lines = [f"Kernel {platform.release()}: features pykex probed by trying them"]
    for category, title in features.CATEGORIES.items():
        members = [f for f in found if f.category == category]
        if not members:
            continue
        have = [f for f in members if f.available]
        lines += ["", f"{title} ({len(have)} of {len(members)})"]
        if category in _NAME_SAYS_IT_ALL:
            names = ", ".join(_short(f) for f in have)
            lines += textwrap.wrap(
                names, 96, initial_indent=f"  {yes} ", subsequent_indent="    "
            )
            listed = [f for f in members if not f.available]
        else:
            listed = members
        for feature in listed:
            mark, detail = (yes, feature.description) if feature.available else (no, feature.reason)
            lines.append(f"  {mark} {_short(feature):<{width}}  {detail}")
    available = sum(f.available for f in found)
    lines += ["", f"{available} of {len(found)} features available"]
    return "\n".join(lines)


def _short(feature: features.Feature) -> str:
    return feature.name.split(".", 1)[1]
