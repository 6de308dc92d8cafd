"""pykex.ir: the intermediate form between the language and the eBPF backend.

See :mod:`pykex.ir.nodes` for the instructions and ``docs/compiler.md`` for
why the IR looks the way it does.
"""

from .nodes import *  # noqa: F403
