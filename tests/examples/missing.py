"""Language features the examples use that the compiler does not provide yet.

Each example test that needs one is marked ``xfail(strict=True)`` with the
reason below, so the mark must go as soon as the feature lands.
"""

from __future__ import annotations

import pytest

needs_bytes_constants = pytest.mark.xfail(
    strict=True,
    reason=(
        "module-level byte-string constants are not supported: `SIGNATURE = b\"...\"` is "
        "rejected ('expected an integer constant, found bytes'), and with it SIGNATURE[0], "
        "len(SIGNATURE) and `ctx.packet[i : i + len(SIGNATURE)] == SIGNATURE`"
    ),
)
