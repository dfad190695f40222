"""A cgroup's own CPU figures: cpu.stat and cpu.max parsing, deltas, and the per-cgroup rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from perftop.system.cgroup_cpu import (
    CgroupCpuMeter,
    CgroupCpuReading,
    CgroupCpuUsage,
    CpuStat,
    cgroup_rows,
    parse_cpu_max,
    parse_cpu_stat,
    samples_by_path,
    unknown_cgroup,
    usage_between,
)

WITH_CONTROLLER = """\
usage_usec 2000000
user_usec 1500000
system_usec 500000
core_sched.force_idle_usec 0
nr_periods 40
nr_throttled 7
throttled_usec 350000
nr_bursts 0
burst_usec 0
"""
# A hybrid mount where cpu is bound to v1: the core figures only.
WITHOUT_CONTROLLER = (
    "usage_usec 5370453713\nuser_usec 4829471360\nsystem_usec 540982352\nnice_usec 1\n"
)


def test_cpu_stat_with_the_cpu_controller() -> None:
    assert parse_cpu_stat(WITH_CONTROLLER) == CpuStat(2_000_000, 7, 350_000)


def test_cpu_stat_without_the_cpu_controller_has_no_throttling() -> None:
    assert parse_cpu_stat(WITHOUT_CONTROLLER) == CpuStat(5_370_453_713, None, None)


@pytest.mark.parametrize("text", ["", "user_usec 5\n", "usage_usec lots\n", "usage_usec -1\n"])
def test_cpu_stat_without_usage_is_none(text: str) -> None:
    assert parse_cpu_stat(text) is None


@pytest.mark.parametrize(
    ("text", "quota"),
    [
        ("max 100000\n", None),
        ("max\n", None),
        ("50000 100000\n", 0.5),
        ("200000 100000\n", 2.0),
        ("150000\n", 1.5),  # period omitted: the kernel's default 100 ms
        ("", None),
        ("abc 100000\n", None),
        ("0 100000\n", None),
        ("50000 0\n", None),
    ],
)
def test_cpu_max(text: str, quota: float | None) -> None:
    assert parse_cpu_max(text) == quota


def _reading(
    at: float, usage: int, throttled: int | None = None, quota: float | None = None
) -> CgroupCpuReading:
    return CgroupCpuReading(
        "/a", at, CpuStat(usage, None if throttled is None else 1, throttled), quota
    )


def test_usage_is_divided_by_the_measured_interval() -> None:
    usage = usage_between(
        _reading(10.0, 1_000_000, 0, 1.5), _reading(12.5, 3_500_000, 200_000, 1.5)
    )
    # 2.5 s of CPU in 2.5 s: one full CPU.
    assert usage == CgroupCpuUsage("/a", "/a", 100.0, 200_000, 1.5)


def test_usage_over_two_cpus_is_above_100() -> None:
    usage = usage_between(_reading(0.0, 0), _reading(1.0, 2_000_000), name="web")
    assert (usage.usage_percent, usage.name, usage.throttled_usec) == (200.0, "web", None)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (_reading(1.0, 500), _reading(2.0, 100)),  # counter went back: a new cgroup at this path
        (_reading(2.0, 100), _reading(2.0, 200)),  # no time passed
        (CgroupCpuReading("/a", 1.0, None, None), _reading(2.0, 100)),  # file absent before
    ],
)
def test_usage_that_cannot_be_measured_is_none(
    before: CgroupCpuReading, after: CgroupCpuReading
) -> None:
    assert usage_between(before, after).usage_percent is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_meter_first_interval_has_no_delta_then_measures(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cpu.stat").write_text("usage_usec 1000000\n")
    (tmp_path / "a" / "cpu.max").write_text("50000 100000\n")
    clock = Clock()
    meter = CgroupCpuMeter(tmp_path, clock)
    first = meter.measure(["/a", "/missing"])
    assert first["/a"] == CgroupCpuUsage("/a", "/a", None, None, 0.5)
    assert first["/missing"] == CgroupCpuUsage("/missing", "/missing", None, None, None)
    clock.now = 2.0
    (tmp_path / "a" / "cpu.stat").write_text("usage_usec 1500000\n")
    second = meter.measure(["/a", "/missing"], names={"/a": "web"})
    assert second["/a"] == CgroupCpuUsage("/a", "web", 25.0, None, 0.5)
    assert second["/missing"].usage_percent is None


def test_rows_of_an_empty_interval() -> None:
    assert cgroup_rows({}, {}) == ()


def test_rows_are_hottest_first_with_percent_of_all_samples() -> None:
    usages = {
        "/a": CgroupCpuUsage("/a", "a.service", 60.0, 0, None),
        "/b": CgroupCpuUsage("/b", "web", 130.0, 5000, 2.0),
        "/idle": CgroupCpuUsage("/idle", "/idle", 3.0, None, None),
    }
    rows = cgroup_rows({"/a": 25, "/b": 75, "/unmeasured": 0}, usages)
    assert [(row.cgroup, row.name, row.samples, row.percent) for row in rows] == [
        ("/b", "web", 75, 75.0),
        ("/a", "a.service", 25, 25.0),
        ("/idle", "/idle", 0, 0.0),  # figures but no samples: still a row, last
        ("/unmeasured", "/unmeasured", 0, 0.0),
    ]
    assert (rows[0].usage_percent, rows[0].throttled_usec, rows[0].quota) == (130.0, 5000, 2.0)
    assert rows[3].usage_percent is None


def test_rows_ties_are_stable_and_names_override() -> None:
    rows = cgroup_rows({"/z": 5, "/y": 5}, {}, names={"/z": "zed"})
    assert [(row.cgroup, row.name, row.percent) for row in rows] == [
        ("/y", "/y", 50.0),
        ("/z", "zed", 50.0),
    ]


def test_samples_by_id_fold_into_paths_and_unknown_ids_keep_a_row() -> None:
    paths = {1: "/", 7: "/a", 8: "/a"}  # 8: the same path made again (a new id)
    counts = samples_by_path({1: 3, 7: 5, 8: 2, 99: 4}, paths.get)
    assert counts == {"/": 3, "/a": 7, unknown_cgroup(99): 4}
    assert not unknown_cgroup(99).startswith("/")
    assert samples_by_path({}, paths.get) == {}
