"""What this process may do: root, or the capabilities that replace it for BPF profiling."""

from __future__ import annotations

import os
from pathlib import Path

CAP_SYS_ADMIN = 21
CAP_SYSLOG = 34
CAP_PERFMON = 38
CAP_BPF = 39


def effective_capabilities(status_path: Path = Path("/proc/self/status")) -> int:
    try:
        for line in status_path.read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def has_capability(capability: int, mask: int | None = None) -> bool:
    mask = effective_capabilities() if mask is None else mask
    return bool(mask >> capability & 1)


def privilege_summary(euid: int | None = None, mask: int | None = None) -> tuple[bool, str]:
    """(enough to profile, one line saying which privilege is in effect)."""
    euid = os.geteuid() if euid is None else euid
    mask = effective_capabilities() if mask is None else mask
    if euid == 0 and has_capability(CAP_SYS_ADMIN, mask):
        return True, "root"
    if has_capability(CAP_SYS_ADMIN, mask):
        return True, "CAP_SYS_ADMIN (not root)"
    if has_capability(CAP_BPF, mask) and has_capability(CAP_PERFMON, mask):
        extra = "" if has_capability(CAP_SYSLOG, mask) else "; kernel symbols need CAP_SYSLOG"
        return True, f"CAP_BPF + CAP_PERFMON (least privilege){extra}"
    return False, "neither root nor CAP_BPF + CAP_PERFMON: run with sudo"
