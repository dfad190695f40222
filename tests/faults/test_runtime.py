"""Faults while perftop runs, against the real sampler in this process: a filtered process exits,
its PID is reused, fork/exec churn, binaries deleted or replaced under a running process, a
process in its own mount and PID namespaces, and full maps seen on the screen."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from perftop.config import SamplerConfig
from perftop.model.samples import Interval
from perftop.model.stats import View
from perftop.profile.view import build_view
from tests.faults.conftest import C_SOURCES, Programs, Spawn, boost

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

CHAIN = ["main", "outer", "middle", "leaf_spin"]


@pytest.fixture(scope="module")
def source() -> Iterator[Any]:
    from perftop.sampling.bcc.source import BccSource

    sampler = BccSource(SamplerConfig(interval_s=0.5, frequency_hz=199))
    yield sampler
    sampler.close()


@pytest.fixture
def filtered(source: Any) -> Iterator[Any]:
    """The shared source, its PID filter cleared again after the test."""
    yield source
    source.set_pid_filter([])
    snapshots(source, 1)


def snapshots(source: Any, count: int) -> list[View]:
    """The next `count` intervals, each as the whole view batch mode prints."""
    taken = []
    for _ in range(count):
        snapshot = source.next_interval()
        assert snapshot is not None
        taken.append(build_view(snapshot))
    return taken


def filter_to(source: Any, *pids: int) -> None:
    """Filter to `pids` from the next interval on (a change applies at a drain)."""
    source.set_pid_filter(list(pids))
    snapshots(source, 1)


def user_symbols(snapshot: Interval, pid: int) -> set[str]:
    return {
        frame.symbol
        for stack in snapshot.stacks
        if stack.pid == pid
        for frame in stack.frames
        if not frame.kernel
    }


def contains_run(haystack: list[str], needle: list[str]) -> bool:
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack)))


def has_chain(snapshot: Interval, pid: int) -> bool:
    return any(
        contains_run([frame.symbol for frame in stack.frames], CHAIN)
        for stack in snapshot.stacks
        if stack.pid == pid
    )


# A filtered process exits ---------------------------------------------------------------------


def test_filtered_process_exits(filtered: Any, spawn: Spawn, programs: Programs) -> None:
    child = spawn([programs["perftop_chain"], "1.2"], nice=0)
    filter_to(filtered, child.pid)
    taken = snapshots(filtered, 1)
    assert any(p.pid == child.pid for p in taken[0].processes)
    while child.poll() is None:
        taken += snapshots(filtered, 1)
    after = snapshots(filtered, 3)  # sampling goes on with nobody left to sample
    for snapshot in after:
        assert snapshot.pid_filter == (child.pid,)
        assert snapshot.samples == 0 and snapshot.processes == ()
    # The interval it exited in still shows it, marked exited; never a row without a name.
    rows = [p for s in taken[1:] for p in s.processes if p.pid == child.pid]
    assert all(row.comm == "perftop_chain" for row in rows)
    if rows:
        assert rows[-1].info.exited
    bystander = spawn([programs["pulse"]], nice=0)  # busy outside the filter, whatever the load
    filtered.set_pid_filter([])
    snapshots(filtered, 1)
    lifted = snapshots(filtered, 1)[0]
    assert lifted.pid_filter == ()
    assert any(p.pid == bystander.pid for p in lifted.processes)  # the filter lifts as before


# A PID is reused ------------------------------------------------------------------------------


@pytest.mark.parametrize("drain_between", [True, False], ids=["next-interval", "same-interval"])
def test_reused_pid_gets_the_new_process_name_and_symbols(
    filtered: Any, spawn: Spawn, programs: Programs, drain_between: bool
) -> None:
    """The old and new programs are non-PIE and load at the same address: a symbol table kept
    for the PID would name the new code with the old functions."""
    old = spawn([programs["perftop_old"], "60"], nice=0)
    pid = old.pid
    filter_to(filtered, pid)
    snapshot = snapshots(filtered, 1)[0]
    assert has_chain(snapshot, pid)
    old.kill()
    old.wait()
    if drain_between:
        snapshots(filtered, 1)
    launcher = spawn([programs["at_pid"], str(pid), programs["perftop_new"]], nice=0)
    assert launcher.stdout is not None
    started = launcher.stdout.readline().strip()
    if started != str(pid).encode():
        pytest.skip(f"PID {pid} was taken by another process before the test could reuse it")
    taken = snapshots(filtered, 3)
    for index, snapshot in enumerate(taken):
        # Even in the interval in which the PID changed owner (which also holds the old
        # program's last samples, under its own comm), the new program's stacks carry its
        # own names, never the old program's.
        new_stacks = [s for s in snapshot.stacks if s.pid == pid and s.comm == "perftop_new"]
        symbols = {f.symbol for s in new_stacks for f in s.frames if not f.kernel}
        assert "reused_pid_spin" in symbols, symbols
        assert not symbols & set(CHAIN[1:]), symbols
        if index == 0 and not drain_between:
            continue
        rows = [p for p in snapshot.processes if p.pid == pid]
        assert rows and rows[0].comm == "perftop_new", rows
        assert "perftop_new" in rows[0].info.cmdline and not rows[0].info.exited
        # Other stacks of this PID in the interval are the launcher's before its exec (its comm
        # is at_pid) or the old program's last ones: never under the new name.
        others = {s.comm for s in snapshot.stacks if s.pid == pid} - {"perftop_new"}
        assert others <= {"at_pid", "perftop_old"}, others


# Fork/exec churn ------------------------------------------------------------------------------


def test_thousands_of_short_lived_processes_a_second(
    filtered: Any, spawn: Spawn, programs: Programs
) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    snapshots(filtered, 1)
    churners = [spawn([programs["churn"]], nice=0) for _ in range(2)]
    started = time.monotonic()
    taken = snapshots(filtered, 6)
    elapsed = time.monotonic() - started
    processes = 0
    for churner in churners:
        churner.send_signal(signal.SIGTERM)
        out, _ = churner.communicate(timeout=10)
        processes += int(out)
    rate = processes / elapsed
    print(f"fork/exec churn: {rate:.0f} processes/s")
    assert rate > 500, f"the machine only managed {rate:.0f} processes/s"
    pids = {p.pid for s in taken for p in s.processes}
    assert len(pids) > 50  # short-lived ones are counted, under their own PID
    for snapshot in taken:
        assert snapshot.interval_s < 3 * 0.5, "the sampler fell behind"
        assert snapshot.cost.drain_ms < 500
        assert snapshot.samples > 0
    # Per-process state stays bounded and nothing leaks.
    assert len(filtered._symbols._user) <= 256
    assert len(filtered._details._baselines) <= filtered._details._max_tracked
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2


# Binaries deleted or replaced -----------------------------------------------------------------


def test_binary_deleted_or_replaced_while_it_runs(
    filtered: Any, spawn: Spawn, programs: Programs, tmp_path: Path
) -> None:
    deleted = tmp_path / "perftop_deleted"
    replaced = tmp_path / "perftop_replaced"
    for binary in (deleted, replaced):
        shutil.copy(programs["perftop_chain"], binary)
    first = spawn([deleted, "60"], nice=0)
    second = spawn([replaced, "60"], nice=0)
    time.sleep(0.2)  # both exec'd and mapped
    deleted.unlink()
    upgrade = tmp_path / "upgrade"
    shutil.copy(programs["perftop_new"], upgrade)  # another ELF, other symbols, same name
    os.rename(upgrade, replaced)
    filter_to(filtered, first.pid, second.pid)
    snapshot = snapshots(filtered, 2)[-1]
    for process, name in ((first, "perftop_deleted"), (second, "perftop_replaced")):
        assert has_chain(snapshot, process.pid), user_symbols(snapshot, process.pid)
        assert "reused_pid_spin" not in user_symbols(snapshot, process.pid)
        modules = {f.module for s in snapshot.stacks if s.pid == process.pid for f in s.frames}
        assert name in modules  # the file's name, without " (deleted)"


# Another mount namespace ----------------------------------------------------------------------


@pytest.fixture
def container(programs: Programs, tmp_path: Path) -> Path:
    """A program whose library exists only in its own mount namespace; the same path on the
    host holds a decoy with the same layout and another function name."""
    host_lib, container_lib = tmp_path / "lib", tmp_path / "container-lib"
    host_lib.mkdir()
    container_lib.mkdir()
    spinlib = C_SOURCES / "spinlib.c"
    for directory, name in ((host_lib, "host_decoy_spin"), (container_lib, "container_spin")):
        programs.compile(
            directory / "libspin.so",
            "-shared",
            "-fPIC",
            f"-DSPIN_NAME={name}",
            "-Wl,-soname,libspin.so",
            str(spinlib),
        )
    binary = programs.compile(
        tmp_path / "nsspin",
        "-pthread",
        str(C_SOURCES / "nsspin.c"),
        f"-L{container_lib}",
        "-lspin",
        f"-Wl,-rpath,{host_lib}",
    )
    return binary


def test_process_in_its_own_mount_and_pid_namespace(
    filtered: Any, spawn: Spawn, container: Path
) -> None:
    host_lib, container_lib = container.parent / "lib", container.parent / "container-lib"
    script = f"mount --bind {container_lib} {host_lib} && exec {container}"
    launcher = spawn(
        ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", script],
        nice=0,
    )
    assert launcher.stdout is not None
    namespace_pid, address, size = launcher.stdout.readline().split()
    assert namespace_pid == b"1"  # it runs as PID 1 of its own PID namespace
    children = psutil.Process(launcher.pid).children()
    assert len(children) == 1
    pid = children[0].pid
    # Decoy: the perf map the host would find for this PID; perftop must read the one in the
    # process's own /tmp, under the PID the process knows itself by.
    decoy = Path(f"/tmp/perf-{pid}.map")
    decoy.write_bytes(address + b" " + size + b" host_decoy_jit\n")
    try:
        filter_to(filtered, pid)
        symbols = set().union(*(user_symbols(s, pid) for s in snapshots(filtered, 2)))
    finally:
        decoy.unlink()
    assert "container_spin" in symbols, symbols
    assert "container_jit" in symbols, symbols
    assert not {"host_decoy_spin", "host_decoy_jit"} & symbols


# Full maps on the screen ----------------------------------------------------------------------


def test_full_maps_are_shown_as_lost_samples_and_sampling_goes_on(
    spawn: Spawn, programs: Programs
) -> None:
    """The batch side is tests/bpf/test_sampler.py::test_full_maps_are_counted_as_lost...;
    here the real screen, fed by a sampler with two-entry maps."""
    from perftop.sampling.bcc.source import BccSource
    from perftop.ui.app import PerftopApp
    from tests.ui.conftest import screen_text, wait_for

    chain = spawn([programs["perftop_chain"], "60"])
    dd = spawn(["dd", "if=/dev/zero", "of=/dev/null", "bs=1M"], stdout=subprocess.DEVNULL)
    tiny = BccSource(
        SamplerConfig(interval_s=0.3, frequency_hz=999, counts_entries=2, stack_entries=2)
    )
    boost(chain.pid, dd.pid)
    app = PerftopApp(tiny)
    screens: list[str] = []

    async def main() -> None:
        # Wide enough for every lost cause beside the maps' fill (a narrower bar names fewer).
        async with app.run_test(size=(200, 48)) as pilot:
            await wait_for(pilot, lambda: app.snapshots_received >= 2, timeout=20)
            received = app.snapshots_received
            await wait_for(pilot, lambda: "counts_map_full" in screen_text(app), timeout=20)
            await wait_for(pilot, lambda: app.snapshots_received >= received + 2, timeout=20)
            screens.append(screen_text(app))
            app.exit()

    try:
        asyncio.run(main())
    finally:
        tiny.close()
    text = screens[0]
    lost = re.search(r"lost (\d+) \(([^)]*)\)", text)
    assert lost and int(lost.group(1)) > 0, text
    assert "counts_map_full" in lost.group(2)
    assert "maps 100% counts" in text  # both entries of the tiny counts map in use
    processes = re.search(r"Processes \((\d+)\)", text)
    assert processes and int(processes.group(1)) > 0, text
