"""Fixtures for the live cgroup tests: a uniquely named test cgroup under the cgroup2 mount,
busy children in its sub-cgroups, and a teardown that always kills the children, moves anything
left to the root cgroup and removes every test directory.

Needs root and a writable cgroup2 mount; skips otherwise, except where PERFTOP_REQUIRE_BPF=1 (CI,
which runs as root) turns the skip into a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from perftop.system.cgroups import Cgroup2Mount, find_cgroup2_mount

BUSY_LOOP = ("sh", "-c", "while :; do :; done")


def _unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "live cgroup tests need root"
    found = find_cgroup2_mount()
    if not isinstance(found, Cgroup2Mount):
        return found.reason
    if not os.access(found.path / "cgroup.procs", os.W_OK):
        return f"{found.path} is not writable"
    return None


@pytest.fixture(scope="module")
def mount() -> Path:
    reason = _unavailable_reason()
    if reason is not None:
        if os.environ.get("PERFTOP_REQUIRE_BPF") == "1":
            pytest.fail(f"PERFTOP_REQUIRE_BPF=1 but live cgroup tests cannot run: {reason}")
        pytest.skip(reason)
    found = find_cgroup2_mount()
    assert isinstance(found, Cgroup2Mount)
    return found.path


class CgroupSandbox:
    """One uniquely named test cgroup under the mount, its sub-cgroups and their busy children."""

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.name = f"perftop-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.directory = mount / self.name
        self.directory.mkdir()
        self.children: list[subprocess.Popen[bytes]] = []
        try:
            self.cpu_controller = self._enable_cpu_controller()
        except OSError:
            self.directory.rmdir()
            raise

    def _enable_cpu_controller(self) -> bool:
        """+cpu for the sub-cgroups, where the parent allows it. Never changes the root's
        subtree_control: the machine is shared. On a hybrid mount cpu is bound to v1 and is
        not even in cgroup.controllers."""
        available = (self.directory / "cgroup.controllers").read_text().split()
        if "cpu" not in available:
            return False
        try:
            (self.directory / "cgroup.subtree_control").write_text("+cpu")
        except OSError:
            return False
        return True

    def path(self, *components: str) -> str:
        return "/" + "/".join((self.name, *components))

    def make(self, *components: str) -> Path:
        directory = self.directory.joinpath(*components)
        directory.mkdir()
        return directory

    def spawn_busy(self, directory: Path, count: int = 1) -> list[subprocess.Popen[bytes]]:
        spawned = []
        for _ in range(count):
            child = subprocess.Popen(BUSY_LOOP)
            self.children.append(child)
            (directory / "cgroup.procs").write_text(str(child.pid))
            spawned.append(child)
        return spawned

    def remove(self, directory: Path) -> None:
        """Move what is left in a test cgroup (and below) to the root cgroup, then rmdir it."""
        for inner in sorted(
            (path for path in directory.rglob("*") if path.is_dir()),
            key=lambda path: len(path.parts),
            reverse=True,
        ):
            self._empty_and_remove(inner)
        self._empty_and_remove(directory)

    def _empty_and_remove(self, directory: Path) -> None:
        if not directory.exists():
            return
        for _ in range(50):
            try:
                pids = (directory / "cgroup.procs").read_text().split()
            except OSError:
                pids = []
            for pid in pids:
                try:
                    (self.mount / "cgroup.procs").write_text(pid)
                except OSError:
                    pass  # exited meanwhile
            try:
                directory.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)  # a task still leaving: the kernel updates populated lazily
        directory.rmdir()  # still busy after a second: fail loudly rather than leave it

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
        for child in self.children:
            child.wait()
        self.remove(self.directory)


@pytest.fixture
def sandbox(mount: Path) -> Iterator[CgroupSandbox]:
    cgroups = CgroupSandbox(mount)
    try:
        yield cgroups
    finally:
        cgroups.close()
    assert not cgroups.directory.exists(), "a test cgroup was left behind"
