"""CPU% is never a false 0.0: a busy process reads busy on its first lookup, whether it existed
before perftop started (`--batch -n 1`), started since, or was left out by a PID filter."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from perftop.system.processes import CpuBaseline, ProcessDetails, cpu_percent_since

SPIN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"


@pytest.fixture
def spinner() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", SPIN])
    time.sleep(0.3)  # running, with CPU time of its own before perftop looks
    yield process
    process.kill()
    process.wait()


def test_measured_over_the_wall_time_since_the_baseline() -> None:
    baseline = CpuBaseline(create_time=0.0, cpu_seconds=10.0, at=100.0)
    assert cpu_percent_since(baseline, 10.5, 101.0) == pytest.approx(50.0)
    assert cpu_percent_since(baseline, 12.0, 101.0) == pytest.approx(200.0)  # two threads
    assert cpu_percent_since(baseline, 10.0, 100.0) == 0.0  # no time passed: nothing to say


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def until_it_ran(pid: int, since: float, seconds: float = 0.1) -> None:
    """Wait until the process has had `seconds` of CPU since `since` (a loaded machine gives
    a spinner what it can: the measure must match what it got, not a fixed share)."""
    deadline = time.monotonic() + 20
    while cpu_seconds(pid) - since < seconds and time.monotonic() < deadline:
        time.sleep(0.05)


def assert_measured(
    details: ProcessDetails, pid: int, cpu_before: float, wall_before: float
) -> None:
    info = details.lookup([pid])[pid]
    expected = 100.0 * (cpu_seconds(pid) - cpu_before) / (time.time() - wall_before)
    assert not info.exited
    assert info.cpu_percent > 0.0, info
    # What it really had over the same time, give or take the reads around the lookup.
    assert 0.5 * expected <= info.cpu_percent <= 1.5 * expected + 5.0, (info, expected)


def test_busy_process_that_existed_before_reads_busy_at_its_first_lookup(
    spinner: subprocess.Popen[bytes],
) -> None:
    wall, cpu = time.time(), cpu_seconds(spinner.pid)
    details = ProcessDetails()  # what --batch -n 1 does: one interval, one lookup
    until_it_ran(spinner.pid, cpu)
    assert_measured(details, spinner.pid, cpu, wall)


def test_process_started_after_perftop_reads_busy_at_once() -> None:
    details = ProcessDetails()
    process = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        created = psutil.Process(process.pid).create_time()
        until_it_ran(process.pid, 0.0, 0.2)
        assert_measured(details, process.pid, 0.0, created)
    finally:
        process.kill()
        process.wait()


def test_clearing_a_pid_filter_keeps_the_others_measured(
    spinner: subprocess.Popen[bytes],
) -> None:
    details = ProcessDetails()
    wall, cpu = time.time(), cpu_seconds(spinner.pid)
    details.lookup([spinner.pid])
    for _ in range(2):  # filtered to ourselves: the spinner is not looked up
        time.sleep(0.2)
        details.lookup([1])
    until_it_ran(spinner.pid, cpu)
    # The filter is cleared: psutil's state was dropped with the filter, and its first
    # cpu_percent() said 0.0; here it is measured since the spinner was last looked up.
    assert_measured(details, spinner.pid, cpu, wall)


def test_reused_pid_starts_afresh() -> None:
    details = ProcessDetails(scan=False)
    # A baseline from a process that had this pid before (another creation time).
    pid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        details._remember(pid.pid, CpuBaseline(create_time=1.0, cpu_seconds=999.0, at=0.0))
        info = details.lookup([pid.pid])[pid.pid]
        assert 0.0 <= info.cpu_percent < 50.0  # not (cpu - 999) clamped, nor since the epoch
    finally:
        pid.kill()
        pid.wait()


def test_exited_process() -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    assert ProcessDetails().lookup([process.pid])[process.pid].exited
