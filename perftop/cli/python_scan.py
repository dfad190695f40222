"""Which running processes are CPython, and can perftop walk their frames: `perftop doctor`'s list.

Every pid in /proc is classified by `detect_python` (~0.1-0.3 ms each), lowest pids first, at
most `MAX_EXAMINED` of them so a machine with a huge process table still gets a prompt answer.
A process may exit or lie at any point of the scan: it is then left out or shown with its reason,
never raised on. Command lines and reasons (which name mapped paths) come from the processes
themselves, so they are made printable here, before they reach any output.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from perftop.python import Detection, NotPython, PythonRuntime, detect_python
from perftop.sanitize import printable
from perftop.system.procfs import is_kernel_thread, running_pids

MAX_EXAMINED = 4096
COMMAND_LIMIT = 200  # as in the batch report (formats/output.py)
REASON_LIMIT = 100  # a reason may name a path of any length
SUPPORTED = "supported (frames walked)"
# UnsupportedPython has only a reason; its version is the "CPython 3.N" the reason starts with.
_REASON_VERSION = re.compile(r"CPython (3\.\d+)")
# detect_python's reason when /proc/PID refuses this user (another user's process, not root).
_REFUSED = os.strerror(errno.EACCES)


@dataclass(frozen=True, slots=True)
class PythonProcess:
    """One CPython process as doctor shows it; `command` and `reason` are already printable."""

    pid: int
    command: str
    version: str  # "3.11.2", "3.10", or "?" when the process does not say
    supported: bool
    reason: str = ""

    @property
    def status(self) -> str:
        return SUPPORTED if self.supported else f"not supported: {self.reason}"


@dataclass(frozen=True, slots=True)
class PythonScan:
    processes: tuple[PythonProcess, ...]
    running: int  # pids in /proc when the scan started
    examined: int
    refused: int  # alive, but /proc/PID is closed to this user

    @property
    def capped(self) -> bool:
        return self.examined < self.running


def scan_python_processes(
    pids: Iterable[int] | None = None,
    limit: int = MAX_EXAMINED,
    detect: Callable[[int], Detection] = detect_python,
) -> PythonScan:
    """Classify up to `limit` of `pids` (default: all of /proc but perftop itself)."""
    own_pid = os.getpid()
    candidates = sorted(running_pids() if pids is None else pids)
    candidates = [pid for pid in candidates if pid != own_pid]
    found: list[PythonProcess] = []
    refused = 0
    for pid in candidates[:limit]:
        if is_kernel_thread(pid):
            continue  # no user memory: never Python, and closed to non-root users anyway
        detection = _detect_safely(detect, pid)
        if isinstance(detection, NotPython):
            if _REFUSED in detection.reason and os.path.exists(f"/proc/{pid}"):
                refused += 1
            continue
        command = command_line(pid)
        if command is None:
            continue  # exited after its detection: no longer running
        found.append(_row(pid, detection, command))
    return PythonScan(tuple(found), len(candidates), min(len(candidates), limit), refused)


def _detect_safely(detect: Callable[[int], Detection], pid: int) -> Detection | str:
    """detect_python promises not to raise; doctor must not stop its report if it ever does, so
    the error becomes the process's row (as a string) and is shown, not hidden."""
    try:
        return detect(pid)
    except Exception as error:  # any bug: the report goes on and the error is printed
        return f"detection failed ({type(error).__name__}: {error}): a perftop bug, please report"


def command_line(pid: int) -> str | None:
    """The printable command line (the name when it is empty or hidden), None once exited."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            try:
                arguments = process.cmdline()
            except psutil.AccessDenied:
                arguments = []
            command = " ".join(arguments) or f"[{process.name()}]"
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        command = "?"
    return printable(command, COMMAND_LIMIT)


def _row(pid: int, detection: Detection | str, command: str) -> PythonProcess:
    if isinstance(detection, PythonRuntime):
        # A version read from a file name has no micro number: do not print a made-up ".0".
        parts = (
            detection.version[:2]
            if detection.version_found_by == "file name"
            else detection.version
        )
        version = ".".join(str(part) for part in parts)
        return PythonProcess(pid, command, version, supported=True)
    reason = detection if isinstance(detection, str) else detection.reason
    named = _REASON_VERSION.search(reason)
    version = named.group(1) if named else "?"
    return PythonProcess(
        pid, command, version, supported=False, reason=printable(reason, REASON_LIMIT)
    )
