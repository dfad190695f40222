"""Modes the user switches between, as enums that know their successor."""

from __future__ import annotations

from enum import StrEnum


class StackMode(StrEnum):
    """Which stacks are collected. A StrEnum: the value is what `--stacks` takes and what the
    JSON output and recordings write, and the BPF side's table of stack bits is keyed by it."""

    BOTH = "both"
    KERNEL = "kernel"
    USER = "user"

    def next(self) -> StackMode:
        """The mode the `k` key switches to: both -> kernel -> user -> both."""
        members = list(StackMode)
        return members[(members.index(self) + 1) % len(members)]
