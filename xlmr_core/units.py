"""Number formatting shared by the launcher's tables and the figures; no dependencies."""

from __future__ import annotations


def si(x: float) -> str:
    """A count with an SI suffix and two decimals: ``1.23M``, ``4.00B``, ``12`` (below a thousand: no decimals)."""
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"
