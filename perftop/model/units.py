"""Numbers as people read them, the same on the screen and in the text report."""

from __future__ import annotations


def human_bytes(count: int) -> str:
    """`1536` -> "2K", `5.5 MiB` -> "5.5M", `300 MiB` -> "300M": at most four characters
    before the unit, so it fits the screen's 6-wide RSS column. 0 (or less) is "-": psutil
    knows no RSS for a kernel thread or an exited process, and 0B would claim one."""
    if count <= 0:
        return "-"
    size = float(count)
    for unit in ("B", "K", "M", "G", "T"):
        if size < 1024 or unit == "T":
            return f"{size:.0f}{unit}" if unit in ("B", "K") or size >= 100 else f"{size:.1f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")
