"""`perftop doctor`: can this machine run perftop, and if not, what to do about it."""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from perftop.system.headers import HeadersError, locate_headers
from perftop.system.privileges import CAP_SYS_PTRACE, has_capability, privilege_summary

if TYPE_CHECKING:
    from perftop.cli.python_scan import PythonScan

SYS_BPF = {"x86_64": 321, "aarch64": 280}
BPF_MAP_CREATE = 0
BPF_MAP_TYPE_ARRAY = 2


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # "ok", "FAIL", "warn", "n/a"
    detail: str
    remedy: str = ""
    listing: tuple[str, ...] = ()
    """Lines shown indented beneath the check (never starting with "[", unlike a check)."""


def check_privileges() -> Check:
    enough, summary = privilege_summary()
    if enough:
        return Check("privileges", "ok", summary)
    return Check("privileges", "FAIL", summary, "run `sudo perftop`, or grant CAP_BPF,CAP_PERFMON")


def check_bpf_syscall() -> Check:
    """Create (and close) a one-entry array map: the cheapest call that proves bpf() works."""
    number = SYS_BPF.get(platform.machine())
    if number is None:
        return Check("bpf syscall", "warn", f"not probed on {platform.machine()}")
    attr = (ctypes.c_uint32 * 32)()
    attr[0], attr[1], attr[2], attr[3] = BPF_MAP_TYPE_ARRAY, 4, 4, 1  # type, key, value, entries
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(number, BPF_MAP_CREATE, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        code = ctypes.get_errno()
        return Check("bpf syscall", "FAIL", os.strerror(code), _refused_remedy(code, "bpf"))
    os.close(fd)
    return Check("bpf syscall", "ok", "BPF maps can be created")


def _refused_remedy(code: int, syscall: str) -> str:
    """What to do when the kernel refuses `syscall`: privileges help only when they are missing;
    with them, something above perftop (a seccomp profile, an LSM) forbids the call."""
    if code not in (errno.EPERM, errno.EACCES):
        return "a kernel with BPF and perf events"
    if privilege_summary()[0]:
        return (
            f"{syscall}() is refused despite the privileges: a seccomp profile or LSM forbids it "
            f"(in a container, allow bpf and perf_event_open, or run perftop on the host)"
        )
    return "run as root (or grant CAP_BPF,CAP_PERFMON)"


def _bcc_import_problem() -> str | None:
    """Why perftop's BCC module cannot be imported. python3-bpfcc loads libbcc with ctypes at
    import time, so a missing or broken libbcc raises OSError rather than ImportError."""
    try:
        from perftop.sampling.bcc.program import bcc_available
    except (ImportError, OSError) as error:
        return f"BCC cannot be loaded ({error}): reinstall python3-bpfcc and libbpfcc"
    return bcc_available()


def check_bcc() -> Check:
    problem = _bcc_import_problem()
    if problem:
        return Check("bcc", "FAIL", problem, "apt-get install python3-bpfcc (or `make setup`)")
    return Check("bcc", "ok", "python3-bpfcc imports")


def check_headers() -> Check:
    try:
        headers = locate_headers()
    except (HeadersError, OSError) as error:
        return Check("kernel headers", "FAIL", str(error), "`make setup` installs them")
    if headers.generic_for is not None:
        # Said, not `ok`: these headers are another kernel's, and what that means is not
        # obvious (perftop works with them, a tool that trusts their layouts would not).
        return Check(
            "kernel headers",
            "warn",
            f"{headers.description}. The BPF program compiles against another kernel's "
            "headers: their uapi types are stable, but their struct layouts are not this "
            f"kernel's, so perftop reads kernel structs through BTF and user memory only; "
            "profiling works as with exact headers",
            f"for exact headers install linux-headers-{headers.generic_for} "
            "(a custom or cloud kernel may have none in the archive)",
        )
    return Check("kernel headers", "ok", headers.description)


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text())
    except (OSError, ValueError):
        return None


def check_paranoid() -> Check:
    value = _read_int("/proc/sys/kernel/perf_event_paranoid")
    if value is None:
        return Check("perf_event_paranoid", "FAIL", "unreadable: no perf events in this kernel?")
    note = "root and CAP_PERFMON are not limited by it"
    return Check("perf_event_paranoid", "ok", f"{value} ({note})")


def kptr_remedy(kptr_restrict: int | None, perf_event_paranoid: int | None) -> str:
    """How to make /proc/kallsyms show addresses to perftop (kernel/kallsyms.c,
    kallsyms_show_value): at 2 to nobody; at 1 to CAP_SYSLOG; at 0 to CAP_SYSLOG, or to
    everyone when perf_event_paranoid <= 1."""
    if kptr_restrict is not None and kptr_restrict >= 2:
        return "sysctl kernel.kptr_restrict=1 (at 2 even root sees no kernel addresses)"
    if kptr_restrict == 0 and (perf_event_paranoid is None or perf_event_paranoid > 1):
        return "grant CAP_SYSLOG (root has it), or sysctl kernel.perf_event_paranoid=1"
    return "grant CAP_SYSLOG (root has it)"


def check_kptr_restrict() -> Check:
    value = _read_int("/proc/sys/kernel/kptr_restrict")
    from perftop.symbols.kernel import KernelSymbols

    if KernelSymbols().hidden:
        return Check(
            "kptr_restrict",
            "warn",
            f"{value}: kernel addresses are hidden, kernel frames cannot be named",
            kptr_remedy(value, _read_int("/proc/sys/kernel/perf_event_paranoid")),
        )
    return Check("kptr_restrict", "ok", f"{value}: kernel symbols readable")


def check_events() -> list[Check]:
    from perftop.model.events import EVENTS, FALLBACK_EVENT

    if _bcc_import_problem():
        return [Check("events", "n/a", "BCC missing: events not probed")]
    from perftop.sampling.bcc.program import probe_event

    checks = []
    for name, event in EVENTS.items():
        reason = probe_event(event)
        if reason is None:
            checks.append(Check(f"event {name}", "ok", event.description))
        elif name == FALLBACK_EVENT:
            # The event every other one falls back to: without it perftop samples nothing.
            refused = reason in (os.strerror(errno.EPERM), os.strerror(errno.EACCES))
            remedy = (
                _refused_remedy(errno.EPERM, "perf_event_open")
                if refused
                else "a kernel with perf events (CONFIG_PERF_EVENTS)"
            )
            checks.append(Check(f"event {name}", "FAIL", reason, remedy))
        else:
            checks.append(Check(f"event {name}", "n/a", reason, f"use -e {FALLBACK_EVENT}"))
    return checks


def check_unwinder() -> Check:
    """Whether this kernel loads the table walker: the whole program is compiled and loaded
    (a few seconds), as a live session would, then unloaded."""
    if _bcc_import_problem():
        return Check("user stacks", "n/a", "BCC missing: the unwinder was not tried")
    if not privilege_summary()[0]:
        return Check("user stacks", "n/a", "no privileges to load the program")
    from perftop.config import SamplerConfig
    from perftop.model.errors import SourceError
    from perftop.sampling.bcc.program import Program, prepare_headers

    try:
        prepare_headers()
        program = Program(SamplerConfig())
    except (SourceError, HeadersError) as error:
        return Check("user stacks", "n/a", f"program not loaded: {str(error)[:160]}")
    try:
        if program.tables:
            return Check(
                "user stacks",
                "ok",
                ".eh_frame unwind tables (the table walker loads; frame pointers where a "
                "binary has no table)",
            )
        return Check(
            "user stacks",
            "warn",
            f"frame pointers only: the kernel refused the table walker ({program.unwind_problem})",
            "a newer kernel; stacks of binaries without frame pointers stop at their first frame",
        )
    finally:
        program.close()


def check_python_processes() -> Check:
    """Which running processes are CPython and whether perftop walks their frames. Never FAIL:
    perftop samples everything else without them."""
    from perftop.cli import python_scan

    return python_check(python_scan.scan_python_processes(limit=python_scan.MAX_EXAMINED))


def python_check(scan: PythonScan) -> Check:
    """The scan as one check line and one aligned line per process (pid, version, status,
    command last: it is the one of unbounded length)."""
    walkable = sum(process.supported for process in scan.processes)
    if scan.processes:
        detail = f"{len(scan.processes)} CPython ({walkable} walkable)"
    else:
        detail = "no CPython process"
    detail += f" among {scan.examined} process{'' if scan.examined == 1 else 'es'} examined"
    notes, remedy, status = [], "", "ok"
    if scan.capped:
        notes.append(f"only the {scan.examined} lowest pids of {scan.running} were examined")
        status = "warn"
    if scan.refused and has_capability(CAP_SYS_PTRACE):
        # Even root is refused a process that made itself undumpable or lives in another
        # user namespace: nothing to grant, only to say.
        notes.append(f"{scan.refused} could not be read (undumpable, or in another user namespace)")
    elif scan.refused:
        notes.append(f"{scan.refused} closed to this user")
        remedy = "run as root (or grant CAP_SYS_PTRACE) to see other users' processes"
        status = "warn"
    version_width = max((len(process.version) for process in scan.processes), default=0)
    status_width = max((len(process.status) for process in scan.processes), default=0)
    listing = tuple(
        f"{process.pid:>7}  {process.version:<{version_width}}  "
        f"{process.status:<{status_width}}  {process.command}"
        for process in scan.processes
    )
    return Check("python processes", status, "; ".join([detail, *notes]), remedy, listing)


CHECKS: tuple[Callable[[], Check | list[Check]], ...] = (
    check_privileges,
    check_bpf_syscall,
    check_bcc,
    check_headers,
    check_paranoid,
    check_kptr_restrict,
    check_events,
    check_unwinder,
    check_python_processes,
)


def run_doctor(stream: TextIO) -> int:
    """Print every check; exit 0 when perftop can sample here, 1 when something essential fails."""
    from perftop.system.stdio import captured_fds

    failed = False
    try:
        for check_function in CHECKS:
            with captured_fds():  # libbcc's perror() output would interleave with the report
                result = check_function()
            for check in result if isinstance(result, list) else [result]:
                failed |= check.status == "FAIL"
                line = f"[{check.status:^4}] {check.name}: {check.detail}"
                if check.remedy and check.status != "ok":
                    line += f"  -> {check.remedy}"
                stream.write(line + "\n")
                for entry in check.listing:
                    stream.write(f"  {entry}\n")
        stream.write(
            "perftop can sample here\n" if not failed else "perftop cannot sample here yet\n"
        )
        stream.flush()
    except BrokenPipeError:
        # The reader left (`perftop doctor | head -1`): nobody is listening, so no traceback;
        # and the interpreter's own flush at exit must not fail on the same pipe again.
        _discard_output(stream)
        return 1
    return 1 if failed else 0


def _discard_output(stream: TextIO) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
