"""Fixtures for the fault tests: helper programs built once, child processes always reaped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

C_SOURCES = Path(__file__).parent / "c"
CHAIN_SOURCE = Path(__file__).parents[1] / "bpf" / "chain.c"
DEBUG_FLAGS = ("-O0", "-fno-omit-frame-pointer")

# name -> (source, extra gcc arguments)
PROGRAMS: dict[str, tuple[Path, tuple[str, ...]]] = {
    "perftop_chain": (CHAIN_SOURCE, ()),
    # Non-PIE: two programs loaded at the same address, so a stale symbol table would name
    # the new program's code with the old program's functions.
    "perftop_old": (CHAIN_SOURCE, ("-no-pie",)),
    "perftop_new": (C_SOURCES / "newspin.c", ("-no-pie",)),
    "hostile": (C_SOURCES / "hostile.c", ("-pthread",)),
    "jitspin": (C_SOURCES / "jitspin.c", ()),
    "at_pid": (C_SOURCES / "at_pid.c", ()),
    "churn": (C_SOURCES / "churn.c", ()),
    "pulse": (C_SOURCES / "pulse.c", ()),
}


class Programs:
    """Helper programs, compiled on first use into a directory every user can read (the least
    privilege tests run some of them as nobody)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __getitem__(self, name: str) -> Path:
        binary = self.directory / name
        if not binary.exists():
            source, extra = PROGRAMS[name]
            subprocess.run(
                ["gcc", *DEBUG_FLAGS, *extra, "-o", str(binary), str(source)], check=True
            )
        return binary

    def compile(self, output: Path, *arguments: str) -> Path:
        subprocess.run(["gcc", *DEBUG_FLAGS, *arguments, "-o", str(output)], check=True)
        return output


@pytest.fixture(scope="session")
def programs() -> Iterator[Programs]:
    directory = Path(tempfile.mkdtemp(prefix="perftop-faults-"))
    directory.chmod(0o755)
    yield Programs(directory)
    shutil.rmtree(directory, ignore_errors=True)


Spawn = Callable[..., "subprocess.Popen[bytes]"]


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # its own group: it and its helpers only
        except OSError:
            process.kill()
    process.wait()


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a busy child at the lowest priority (so it yields the CPU to perftop's compile),
    in a process group of its own; every child is killed at the end of the test."""
    yield from _spawner()


@pytest.fixture(scope="module")
def module_spawn() -> Iterator[Spawn]:
    """`spawn` for children shared by a whole module."""
    yield from _spawner()


def _spawner() -> Iterator[Spawn]:
    started: list[subprocess.Popen[bytes]] = []

    def start(
        argv: Sequence[str | bytes | os.PathLike[str]],
        *,
        stdout: int | None = subprocess.PIPE,
        user: str | None = None,
        nice: int = 19,
    ) -> subprocess.Popen[bytes]:
        def lower_priority() -> None:
            os.nice(nice)

        process = subprocess.Popen(
            list(argv),
            stdout=stdout,
            stdin=subprocess.DEVNULL,
            preexec_fn=lower_priority,
            start_new_session=True,
            user=user,
            group="nogroup" if user else None,
            extra_groups=[] if user else None,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        _reap(process)


def boost(*pids: int) -> None:
    """Give busy children normal priority again once perftop has compiled: on a loaded
    machine a child left at nice 19 may get no CPU, hence no samples, at all."""
    for pid in pids:
        renice(pid, 0)


def renice(pid: int, nice: int) -> None:
    """Every thread of `pid` to `nice` (on Linux a nice value belongs to a thread)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for thread in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, int(thread), nice)
        except OSError:
            pass
