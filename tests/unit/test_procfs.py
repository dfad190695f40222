"""/proc read in one place, with named predicates."""

from __future__ import annotations

import os

import pytest

from perftop.system import procfs
from perftop.system.procfs import (
    Mapping,
    StartTimes,
    is_kernel_thread,
    is_kernel_thread_ids,
    parse_cpu_list,
    process_ids,
    read_maps,
    read_stat,
)

GONE = 2**22 + 12345  # above PID_MAX_LIMIT: never a process


def test_stat_of_self_and_of_nothing() -> None:
    stat = read_stat(os.getpid())
    assert stat is not None and stat.parent_pid == os.getppid() and stat.start_time > 0
    assert not stat.is_kernel_thread and not is_kernel_thread(os.getpid())
    assert read_stat(GONE) is None and not is_kernel_thread(GONE)


def test_start_times_read_each_pid_once_until_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real = procfs.process_start_time

    def counting(pid: int) -> int | None:
        reads.append(pid)
        return real(pid)

    monkeypatch.setattr(procfs, "process_start_time", counting)
    start_times = StartTimes()
    own = start_times(os.getpid())
    assert own == real(os.getpid()) and own is not None
    assert start_times(os.getpid()) == own and start_times(GONE) is None
    assert start_times(GONE) is None
    assert reads == [os.getpid(), GONE]  # a gone process is remembered as gone too
    start_times.forget()
    assert start_times(os.getpid()) == own and reads == [os.getpid(), GONE, os.getpid()]


def test_the_kernel_thread_rule() -> None:
    assert is_kernel_thread_ids(2, 0) and is_kernel_thread_ids(40, 2)
    assert not is_kernel_thread_ids(1, 0) and not is_kernel_thread_ids(40, 1)
    assert is_kernel_thread(2) == os.path.exists("/proc/2")


def test_ids_of_self() -> None:
    assert process_ids(os.getpid()).uid == os.geteuid()
    assert process_ids(GONE) == (GONE, None)


@pytest.mark.parametrize(
    ("path", "file_backed", "vdso", "deleted"),
    [
        ("/usr/lib/libc.so.6", True, False, False),
        ("/usr/bin/app (deleted)", True, False, True),
        ("/memfd:jit (deleted)", False, False, True),
        ("/dev/zero (deleted)", False, False, True),
        ("[vdso]", False, True, False),
        ("", False, False, False),
    ],
)
def test_mapping_predicates(path: str, file_backed: bool, vdso: bool, deleted: bool) -> None:
    mapping = Mapping(0x1000, 0x2000, 0, path)
    assert (mapping.is_file_backed, mapping.is_vdso, mapping.is_deleted) == (
        file_backed,
        vdso,
        deleted,
    )
    assert not mapping.file_path.endswith(" (deleted)")


def test_own_maps_hold_executable_code() -> None:
    maps = read_maps(os.getpid())
    assert maps and any(m.is_file_backed for m in maps)
    assert read_maps(GONE) is None


def test_cpu_lists() -> None:
    assert parse_cpu_list("0-3,8\n") == [0, 1, 2, 3, 8]
    assert parse_cpu_list("0") == [0]
