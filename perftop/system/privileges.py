"""What this process may do: root, or the capabilities that replace it for BPF profiling."""

from __future__ import annotations

import os
from pathlib import Path

CAP_DAC_READ_SEARCH = 2
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21
CAP_SYSLOG = 34
CAP_PERFMON = 38
CAP_BPF = 39
CAP_CHECKPOINT_RESTORE = 40

_NAMES = {
    CAP_DAC_READ_SEARCH: "CAP_DAC_READ_SEARCH",
    CAP_SYS_PTRACE: "CAP_SYS_PTRACE",
    CAP_SYSLOG: "CAP_SYSLOG",
    CAP_PERFMON: "CAP_PERFMON",
    CAP_BPF: "CAP_BPF",
    CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE",
}
# Beyond CAP_BPF + CAP_PERFMON (which also let perftop read every /proc/PID/maps), what each
# capability adds; measured on Linux 6.x, see the README's "Least privilege".
EXTRAS: tuple[tuple[tuple[int, ...], str], ...] = (
    ((CAP_SYSLOG,), "kernel symbols"),  # /proc/kallsyms addresses (kptr_restrict)
    ((CAP_SYS_PTRACE,), "other users' symbols"),  # /proc/PID/root of their processes
    # /proc/PID/map_files, the mapped file itself: deleted, replaced, in a container
    ((CAP_CHECKPOINT_RESTORE, CAP_DAC_READ_SEARCH), "replaced or containerized binaries"),
)


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
        held = [CAP_BPF, CAP_PERFMON]
        missing = []
        for capabilities, what in EXTRAS:
            if all(has_capability(capability, mask) for capability in capabilities):
                held.extend(capabilities)
            else:
                names = " + ".join(_NAMES[capability] for capability in capabilities)
                missing.append(f"; {what} need {names}")
        in_effect = " + ".join(_NAMES[capability] for capability in held)
        return True, f"{in_effect} (least privilege){''.join(missing)}"
    return False, "neither root nor CAP_BPF + CAP_PERFMON: run with sudo"
