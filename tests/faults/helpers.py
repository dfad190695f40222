"""Running perftop the way a user does (a subprocess, a real exit status, real stderr) and
looking at what it leaves in the kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).parents[2]
PYTHON = sys.executable
NOBODY = ("--reuid=nobody", "--regid=nogroup", "--clear-groups")
# The environment variables a test may not inherit: BCC_KERNEL_SOURCE is set by any in-process
# BccSource (it exports the headers it chose) and would hide a missing-headers failure.
_SCRUBBED = ("BCC_KERNEL_SOURCE", "PYTHONPATH", "DEBUGINFOD_URLS")


def perftop_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update(extra)
    return env


def perftop_argv(*args: str, prefix: Sequence[str] = ()) -> list[str]:
    return [*prefix, PYTHON, "-m", "perftop", *args]


def run_perftop(
    *args: str,
    prefix: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        perftop_argv(*args, prefix=prefix),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        cwd=ROOT,
        env=dict(env) if env is not None else perftop_env(),
        stdin=subprocess.DEVNULL,
    )


def start_perftop(
    *args: str, prefix: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """perftop in the background (to overlap compiles, or to act once it has attached)."""
    return subprocess.Popen(
        perftop_argv(*args, prefix=prefix),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        cwd=ROOT,
        env=dict(env) if env is not None else perftop_env(),
    )


def finish(
    process: subprocess.Popen[str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def setpriv(capabilities: Sequence[str] = (), user: bool = True) -> list[str]:
    """A prefix running the command as nobody (or still uid 0 when `user` is False) with exactly
    these capabilities (names as setpriv spells them: bpf, perfmon, syslog, ...)."""
    caps = ",".join(f"+{name}" for name in capabilities)
    prefix = ["setpriv", *(NOBODY if user else ())]
    if user:
        prefix += ["--inh-caps=-all" + (f",{caps}" if caps else "")]
        if caps:
            prefix += [f"--ambient-caps={caps}"]
    else:
        # uid 0 keeps whatever the bounding set allows across exec: shrink it to `capabilities`.
        prefix += ["--inh-caps=-all", "--bounding-set=-all" + (f",{caps}" if caps else "")]
    return [*prefix, "--"]


def assert_one_line_failure(
    result: subprocess.CompletedProcess[str], status: int, *fragments: str
) -> str:
    """The issue's contract for bad input and missing prerequisites: one clear line on stderr,
    a non-zero exit status, no traceback, nothing on stdout."""
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    assert result.returncode == status, (result.returncode, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("perftop: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def doctor_lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """`perftop doctor` output as check name -> its whole line."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    checks = {}
    for line in result.stdout.splitlines():
        if line.startswith("[") and "] " in line:
            name = line.split("] ", 1)[1].split(":", 1)[0]
            checks[name] = line
    return checks


# What is loaded in the kernel ----------------------------------------------------------------


def loaded_program_ids() -> set[int]:
    out = subprocess.run(
        ["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True
    )
    return {program["id"] for program in json.loads(out.stdout or "[]")}


def _fds(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []


def programs_held_by(pid: int) -> set[int]:
    """Ids of the BPF programs a process holds file descriptors to."""
    ids = set()
    for fd in _fds(pid):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                for line in info:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return ids


def perf_event_fds_held_by(pid: int) -> int:
    count = 0
    for fd in _fds(pid):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[perf_event]":
                count += 1
        except OSError:
            continue
    return count


def online_cpu_count() -> int:
    from perftop.sampling.bcc.source import online_cpus

    return len(online_cpus())


def _attached(pid: int, cpus: int) -> set[int]:
    programs = programs_held_by(pid)
    return programs if programs and perf_event_fds_held_by(pid) >= cpus else set()


def wait_until_attached(pid: int, timeout: float = 120) -> set[int]:
    """Wait until `pid` has its program loaded and one perf event open per online CPU; the
    ids of the programs it holds."""
    return wait_until_any_attached([pid], timeout)[1]


def wait_until_any_attached(pids: Sequence[int], timeout: float = 120) -> tuple[int, set[int]]:
    """The first of `pids` to attach (see wait_until_attached), and its programs."""
    cpus = online_cpu_count()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            programs = _attached(pid, cpus)
            if programs:
                return pid, programs
        time.sleep(0.1)
    raise AssertionError(f"none of perftop {list(pids)} attached within {timeout} s")
