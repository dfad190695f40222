"""perftop as an ordinary user holding capabilities instead of root (setpriv: uid nobody,
ambient capabilities), on the real kernel. What each capability adds was measured here and is
written down in the README's "Least privilege"; `perftop doctor` says which set is in effect.

- CAP_BPF + CAP_PERFMON: load and attach the program, read every process's /proc/PID/maps.
- + CAP_SYSLOG: kernel symbol names (when kptr_restrict or perf_event_paranoid hide them).
- + CAP_SYS_PTRACE: user symbols of other users' processes (through /proc/PID/root).
- + CAP_CHECKPOINT_RESTORE + CAP_DAC_READ_SEARCH: binaries replaced since they started, or in
  another mount namespace (through /proc/PID/map_files).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from perftop.formats.recording import read_recording
from perftop.model.reasons import Unresolved
from perftop.model.samples import Frame, Interval
from tests.faults.conftest import Programs, Spawn, boost
from tests.faults.helpers import (
    doctor_lines,
    finish,
    run_perftop,
    setpriv,
    start_perftop,
    wait_until_any_attached,
)

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

MINIMAL = ("bpf", "perfmon")
WITH_SYMBOLS = (*MINIMAL, "syslog", "sys_ptrace")
RECOMMENDED = (*WITH_SYMBOLS, "checkpoint_restore", "dac_read_search")
CHAIN = ["main", "outer", "middle", "leaf_spin"]


@dataclass
class Run:
    result: subprocess.CompletedProcess[str]
    snapshots: list[Interval]

    def frames(self, pid: int, kernel: bool) -> set[Frame]:
        return {
            frame
            for snapshot in self.snapshots
            for stack in snapshot.stacks
            if stack.pid == pid
            for frame in stack.frames
            if frame.kernel == kernel
        }


@dataclass
class World:
    runs: dict[tuple[str, ...], Run]
    own: int  # a busy process of nobody, perftop's user
    other: int  # a busy process of root
    replaced: int  # root's, its binary replaced on disk since it started
    kernel: int  # root's dd, busy in the kernel


@pytest.fixture(scope="module")
def world(module_spawn: Spawn, programs: Programs) -> Iterator[World]:
    chain = programs["perftop_chain"]
    doomed = chain.with_name("perftop_replaced")
    shutil.copy(chain, doomed)
    # Long-lived (killed below): three compiles on a loaded 2-CPU machine took over a minute.
    own = module_spawn([chain, "300"], user="nobody")
    other = module_spawn([chain, "300"])
    replaced = module_spawn([doomed, "300"])
    kernel = module_spawn(["dd", "if=/dev/zero", "of=/dev/null", "bs=1M"])
    replacement = doomed.with_name("perftop_replaced.new")
    replacement.write_bytes(b"#!/bin/sh\n")  # an upgrade: a different file now has the name
    os.rename(replacement, doomed)
    pids = ",".join(str(process.pid) for process in (own, other, replaced, kernel))
    out = Path(tempfile.mkdtemp(prefix="perftop-least-"))
    os.chown(out, 65534, 65534)
    started = {}
    for capabilities in (MINIMAL, WITH_SYMBOLS, RECOMMENDED):  # concurrently: compiles overlap
        recording = out / f"{'-'.join(capabilities)}.jsonl"
        args = ["--batch", "--format", "json", "-n", "4", "-d", "0.5", "-p", pids]
        # No BCC_KERNEL_SOURCE: perftop finds the headers (root's merged tree) itself.
        process = start_perftop(*args, "--record", str(recording), prefix=setpriv(capabilities))
        started[capabilities] = (process, recording)
    # Sampling starts with the first run to attach; the others may still be compiling.
    wait_until_any_attached([process.pid for process, _ in started.values()])
    boost(own.pid, other.pid, replaced.pid, kernel.pid)
    runs = {}
    for capabilities, (process, recording) in started.items():
        result = finish(process)
        snapshots = read_recording(recording) if recording.exists() else []
        runs[capabilities] = Run(result, snapshots)
    for process in (own, other, replaced, kernel):
        process.kill()  # done: the runs are recorded
        process.wait()
    yield World(runs, own.pid, other.pid, replaced.pid, kernel.pid)
    shutil.rmtree(out, ignore_errors=True)


def _kallsyms_hidden_without_syslog() -> bool:
    text = Path("/proc/sys/kernel/kptr_restrict").read_text().strip()
    paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    return int(text) >= 1 or paranoid > 1


def contains_run(haystack: list[str], needle: list[str]) -> bool:
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack)))


def assert_chain(run: Run, pid: int) -> None:
    chains = [
        [frame.symbol for frame in stack.frames if not frame.kernel]
        for snapshot in run.snapshots
        for stack in snapshot.stacks
        if stack.pid == pid
    ]
    assert any(contains_run(chain, CHAIN) for chain in chains), chains[:3]


def assert_ran(run: Run, *pids: int) -> None:
    assert run.result.returncode == 0, run.result.stderr
    assert "Traceback" not in run.result.stderr
    assert len(run.result.stdout.splitlines()) == 4
    seen = {pid for snapshot in run.snapshots for pid in snapshot.processes}
    assert set(pids) <= seen, (pids, seen)


def test_bpf_and_perfmon_are_enough_to_sample(world: World) -> None:
    run = world.runs[MINIMAL]
    assert_ran(run, world.own, world.other, world.replaced, world.kernel)
    # Its own user's process: every symbol (maps, and the binary through /proc/PID/root).
    assert_chain(run, world.own)
    # Root's: the samples and the process, but its binary is out of reach, and said so.
    # (The vDSO is the kernel's, the same in every process: perftop names it from its own.)
    frames = {frame for frame in run.frames(world.other, kernel=False) if frame.module != "[vdso]"}
    assert frames and all(frame.unresolved_reason is Unresolved.ROOT_DENIED for frame in frames)
    assert all(frame.symbol.startswith(("perftop_chain+0x", "libc")) for frame in frames), frames
    if _kallsyms_hidden_without_syslog():
        kernel_frames = run.frames(world.kernel, kernel=True)
        assert kernel_frames
        assert all(frame.unresolved_reason is Unresolved.KPTR for frame in kernel_frames)


def test_syslog_and_ptrace_add_kernel_and_other_users_symbols(world: World) -> None:
    run = world.runs[WITH_SYMBOLS]
    assert_ran(run, world.own, world.other, world.replaced, world.kernel)
    assert_chain(run, world.own)
    assert_chain(run, world.other)
    kernel_frames = run.frames(world.kernel, kernel=True)
    assert kernel_frames and any(frame.resolved for frame in kernel_frames)
    # A binary replaced since it started is reachable only through map_files.
    replaced = run.frames(world.replaced, kernel=False)
    in_binary = {frame for frame in replaced if frame.module == "perftop_replaced"}
    assert in_binary
    assert all(frame.unresolved_reason is Unresolved.MAP_FILES_DENIED for frame in in_binary)


def test_recommended_set_symbolizes_everything(world: World) -> None:
    run = world.runs[RECOMMENDED]
    assert_ran(run, world.own, world.other, world.replaced, world.kernel)
    for pid in (world.own, world.other, world.replaced):
        assert_chain(run, pid)
    assert any(frame.resolved for frame in run.frames(world.kernel, kernel=True))


def test_doctor_says_which_privilege_is_in_effect() -> None:
    prefixes = {
        "minimal": setpriv(MINIMAL),
        "recommended": setpriv(RECOMMENDED),
        # uid 0 without CAP_SYS_ADMIN (a container given two capabilities) is not "root" either.
        "container": setpriv(MINIMAL, user=False),
        "no bpf": setpriv(("perfmon",)),
        "root": [],
    }
    running = {name: start_perftop("doctor", prefix=prefix) for name, prefix in prefixes.items()}
    doctors = {name: doctor_lines(finish(process)) for name, process in running.items()}
    minimal = doctors["minimal"]["privileges"]
    assert minimal.startswith("[ ok ] privileges: CAP_BPF + CAP_PERFMON (least privilege); ")
    assert "kernel symbols need CAP_SYSLOG" in minimal
    assert "other users' symbols need CAP_SYS_PTRACE" in minimal
    assert doctors["minimal"]["bpf syscall"].startswith("[ ok ]")
    assert doctors["minimal"]["event cpu-clock"].startswith("[ ok ]")
    assert doctors["recommended"]["privileges"] == (
        "[ ok ] privileges: CAP_BPF + CAP_PERFMON + CAP_SYSLOG + CAP_SYS_PTRACE + "
        "CAP_CHECKPOINT_RESTORE + CAP_DAC_READ_SEARCH (least privilege)"
    )
    container = doctors["container"]["privileges"]
    assert container.startswith("[ ok ] privileges: CAP_BPF + CAP_PERFMON (least privilege)")
    assert doctors["no bpf"]["privileges"].startswith("[FAIL] privileges: neither root nor")
    assert doctors["no bpf"]["bpf syscall"].startswith("[FAIL]")
    assert doctors["root"]["privileges"] == "[ ok ] privileges: root"


def test_merged_headers_usable_without_root() -> None:
    from perftop.system.headers import CACHE_ROOT, locate_headers

    if not locate_headers().path.resolve().is_relative_to(CACHE_ROOT):
        pytest.skip("the running kernel's own headers package is installed")
    result = run_perftop("--batch", "-n", "1", "-d", "0.2", prefix=setpriv(MINIMAL))
    assert result.returncode == 0, result.stderr


def test_setpriv_prefix_really_drops_root() -> None:
    """The prefix the tests above rely on: uid nobody, exactly the named capabilities."""
    out = subprocess.run(
        [*setpriv(MINIMAL), "grep", "-E", "^(Uid|CapEff):", "/proc/self/status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["Uid"].split()[1] == "65534"
    assert int(fields["CapEff"], 16) == (1 << 38) | (1 << 39)
