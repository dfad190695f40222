"""This machine's CPUs as sysfs and procfs list them."""

from __future__ import annotations

from pathlib import Path


def online_cpus() -> list[int]:
    return parse_cpu_list(Path("/sys/devices/system/cpu/online").read_text())


def parse_cpu_list(text: str) -> list[int]:
    """The CPUs of a kernel cpu list such as "0-3,8,10-11"."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if "-" in part:
            first, last = part.split("-")
            cpus.extend(range(int(first), int(last) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


def max_sample_rate() -> int | None:
    """kernel.perf_event_max_sample_rate, the highest frequency a perf event may ask for."""
    try:
        return int(Path("/proc/sys/kernel/perf_event_max_sample_rate").read_text())
    except (OSError, ValueError):
        return None
