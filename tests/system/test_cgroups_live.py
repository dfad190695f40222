"""Cgroup v2 for real: test cgroups made under the cgroup2 mount (see conftest.py), busy children
moved into them, and everything moved back and removed in teardown, even when a test fails.

The machine's CPUs are shared with other tests, so CPU figures are compared between the test's
cgroups and against the children's own CPU time, not against absolute numbers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from perftop.system.cgroup_cpu import CgroupCpuMeter
from perftop.system.cgroup_selection import parse_cgroup_selection, selected_pids
from perftop.system.cgroups import (
    CgroupResolver,
    cgroup_of,
)
from tests.system.conftest import CgroupSandbox

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _cpu_seconds_of(pid: int) -> float:
    """utime + stime of a process from /proc/PID/stat (after the ")" that ends the comm)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


def test_id_is_the_directory_inode_and_resolves_to_its_path(sandbox: CgroupSandbox) -> None:
    directory = sandbox.make("a")
    resolver = CgroupResolver(sandbox.mount)
    cgroup_id = directory.stat().st_ino
    assert resolver.path_of(cgroup_id) == sandbox.path("a")
    assert resolver.id_of(sandbox.path("a")) == cgroup_id
    assert resolver.path_of(sandbox.mount.stat().st_ino) == "/"


def test_cgroup_of_a_child_is_its_directory(sandbox: CgroupSandbox) -> None:
    directory = sandbox.make("a")
    [child] = sandbox.spawn_busy(directory)
    assert cgroup_of(child.pid) == sandbox.path("a")
    assert cgroup_of(os.getpid()) != sandbox.path("a")


def test_new_cgroup_has_usage_in_cpu_stat(sandbox: CgroupSandbox) -> None:
    directory = sandbox.make("a")
    text = (directory / "cpu.stat").read_text()
    assert text.startswith("usage_usec ")
    # throttling and quota exist exactly when the cpu controller is on for this cgroup
    assert ("throttled_usec" in text) == sandbox.cpu_controller
    assert (directory / "cpu.max").exists() == sandbox.cpu_controller


def test_nested_cgroup_resolves_and_is_under_its_parent(sandbox: CgroupSandbox) -> None:
    parent = sandbox.make("parent")
    inner = sandbox.make("parent", "inner")
    sibling = sandbox.make("parent-sibling")
    [inner_child] = sandbox.spawn_busy(inner)
    [sibling_child] = sandbox.spawn_busy(sibling)
    resolver = CgroupResolver(sandbox.mount)
    inner_id = inner.stat().st_ino
    assert resolver.path_of(inner_id) == sandbox.path("parent", "inner")
    assert resolver.ancestor_ids(inner_id)[-3:] == (
        sandbox.directory.stat().st_ino,
        parent.stat().st_ino,
        inner_id,
    )

    selection = parse_cgroup_selection(f"{sandbox.name}/parent", sandbox.mount)
    assert selection.ids == {parent.stat().st_ino}
    assert selection.contains_id(inner_id, resolver)
    assert not selection.contains_id(sibling.stat().st_ino, resolver)
    assert selected_pids(selection, [inner_child.pid, sibling_child.pid, os.getpid()]) == [
        inner_child.pid
    ]
    # The same by absolute path, and the other two spellings of the sibling.
    absolute = parse_cgroup_selection(str(parent), sandbox.mount)
    assert absolute == selection
    assert parse_cgroup_selection(sandbox.path("parent-sibling"), sandbox.mount).ids == {
        sibling.stat().st_ino
    }


def test_selection_rejects_what_is_not_a_cgroup(sandbox: CgroupSandbox) -> None:
    sandbox.make("a")
    for argument, message in (
        (f"{sandbox.name}/missing", "no such cgroup"),
        (f"{sandbox.name}/a/cgroup.procs", "not a cgroup directory"),
        ("/proc", "no such cgroup"),  # not under the mount, and no /proc cgroup either
    ):
        with pytest.raises(ValueError, match=message):
            parse_cgroup_selection(argument, sandbox.mount)


def test_usage_of_two_cgroups_follows_an_uneven_split(sandbox: CgroupSandbox) -> None:
    one = sandbox.make("one")
    two = sandbox.make("two")
    children_of = {
        sandbox.path("one"): sandbox.spawn_busy(one, 1),
        sandbox.path("two"): sandbox.spawn_busy(two, 2),
    }
    meter = CgroupCpuMeter(sandbox.mount)
    cpu_before = {child.pid: _cpu_seconds_of(child.pid) for child in sandbox.children}
    first = meter.measure(children_of)
    assert all(usage.usage_percent is None for usage in first.values())  # no delta yet
    time.sleep(2.5)
    second = meter.measure(children_of)
    cpu_after = {child.pid: _cpu_seconds_of(child.pid) for child in sandbox.children}

    usage = {cgroup: second[cgroup].usage_percent for cgroup in children_of}
    assert all(percent is not None and percent > 0 for percent in usage.values()), usage
    usage_one, usage_two = usage[sandbox.path("one")], usage[sandbox.path("two")]
    assert usage_one is not None and usage_two is not None
    # Three equal busy tasks, scheduled per task (no cpu controller) or per cgroup with equal
    # weights: two gets about twice one, or about the same. Either way never less than one.
    ratio = usage_two / usage_one
    low, high = (0.6, 1.6) if sandbox.cpu_controller else (1.25, 3.5)
    assert low < ratio < high, f"cgroup usage {usage}, ratio {ratio:.2f}"
    # And cpu.stat agrees with the children's own CPU time over the same seconds.
    for cgroup, children in children_of.items():
        children_seconds = sum(cpu_after[c.pid] - cpu_before[c.pid] for c in children)
        cgroup_seconds = (usage[cgroup] or 0.0) / 100.0 * 2.5
        assert abs(cgroup_seconds - children_seconds) < 0.2 * children_seconds + 0.1, (
            cgroup,
            cgroup_seconds,
            children_seconds,
        )
    for figures in second.values():
        assert (figures.throttled_usec is not None) == sandbox.cpu_controller
        assert figures.quota is None  # cpu.max is "max" by default, or absent


def test_removed_cgroup_ages_out_without_an_error(sandbox: CgroupSandbox) -> None:
    directory = sandbox.make("short-lived")
    [child] = sandbox.spawn_busy(directory)
    cgroup_id = directory.stat().st_ino
    resolver = CgroupResolver(sandbox.mount, refresh_seconds=0.05, retain_removed_seconds=0.5)
    meter = CgroupCpuMeter(sandbox.mount)
    path = sandbox.path("short-lived")
    assert resolver.path_of(cgroup_id) == path
    meter.measure([path])

    child.kill()
    child.wait()
    sandbox.remove(directory)
    time.sleep(0.1)
    resolver.refresh_if_due()
    assert resolver.is_removed(cgroup_id)
    assert resolver.path_of(cgroup_id) == path  # its last counts still get a name
    figures = meter.measure([path])[path]
    assert (figures.usage_percent, figures.throttled_usec, figures.quota) == (None, None, None)

    time.sleep(0.6)
    resolver.refresh_if_due()
    assert resolver.path_of(cgroup_id) is None
    assert not resolver.is_removed(cgroup_id)
    with pytest.raises(ValueError, match="no such cgroup"):
        parse_cgroup_selection(path, sandbox.mount)
