"""Cgroups through the real sampler: the cgroup id in the kernel's count key, the in-kernel
filter (bpf_current_task_under_cgroup over a BPF_CGROUP_ARRAY), the names and the cgroups' own
cpu.stat figures, with busy children in test cgroups made under the cgroup2 mount.

Kernel tests: they load the real BPF program (one shared source for the module, plus one for
the screen and one for the command line), so they are `bpf`-marked and never skip in CI.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perftop.config import SamplerConfig
from perftop.formats.output import format_json, format_text
from perftop.model.samples import Interval
from perftop.model.stats import View
from perftop.profile.accumulate import DecayingAccumulation
from perftop.profile.view import build_view
from tests.system.conftest import CgroupSandbox

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source(mount: Path) -> Iterator[Any]:
    from perftop.sampling.bcc.source import BccSource

    # 499 Hz: the shares are compared within 3 points, so each needs a few thousand samples.
    sampler = BccSource(SamplerConfig(interval_s=1.0, frequency_hz=499))
    yield sampler
    sampler.close()


@pytest.fixture
def sampler(source: Any) -> Iterator[Any]:
    """The shared source, its cgroup filter cleared again after the test."""
    yield source
    source.set_cgroup_filter(())
    source.next_interval()


def views(source: Any, count: int) -> list[View]:
    taken = []
    for _ in range(count):
        interval = source.next_interval()
        assert interval is not None
        taken.append(build_view(interval))
    return taken


def filter_to(source: Any, *paths: str) -> None:
    """The filter from the next interval on: a change applies at the next drain, before its
    flip, so the interval that drain returns was still sampled the old way."""
    source.set_cgroup_filter(paths)
    views(source, 1)


def pids_of(view: View) -> set[int]:
    return {process.pid for process in view.processes}


def test_each_child_is_in_its_directory_and_shares_follow_cpu_stat(
    sampler: Any, sandbox: CgroupSandbox
) -> None:
    one, two = sandbox.make("one"), sandbox.make("two")
    children = {sandbox.path("one"): sandbox.spawn_busy(one, 1)}
    children[sandbox.path("two")] = sandbox.spawn_busy(two, 2)
    # The sandbox only: the shares are of the two test cgroups, whatever else the machine runs.
    filter_to(sampler, sandbox.path())
    views(sampler, 1)  # the cgroups' first cpu.stat reading has no delta yet
    samples = dict.fromkeys(children, 0)
    usage_usec = dict.fromkeys(children, 0.0)
    for view in views(sampler, 5):
        rows = {row.cgroup: row for row in view.cgroups}
        sampled = {cgroup for cgroup, row in rows.items() if row.samples}
        assert sampled <= set(children), rows  # the filter lets nothing else in
        for cgroup in children:
            row = rows[cgroup]
            samples[cgroup] += row.samples
            assert row.info.usage_percent is not None, row
            usage_usec[cgroup] += row.info.usage_percent / 100 * view.interval_s * 1e6
        for process in view.processes:
            cgroup = next(c for c, kids in children.items() if process.pid in {k.pid for k in kids})
            assert process.cgroup == cgroup  # each child's cgroup is its directory
            assert process.container is None
    total_samples, total_usage = sum(samples.values()), sum(usage_usec.values())
    assert total_samples > 400, samples  # the machine is shared: few when it is busy
    for cgroup in children:
        sampled = 100 * samples[cgroup] / total_samples
        measured = 100 * usage_usec[cgroup] / total_usage
        assert abs(sampled - measured) <= 3, (cgroup, sampled, measured, samples, usage_usec)
    # The split is uneven: two's two children against one's one.
    assert samples[sandbox.path("two")] > 1.2 * samples[sandbox.path("one")], samples


def test_the_filter_counts_a_cgroup_and_its_descendants_only(
    sampler: Any, sandbox: CgroupSandbox
) -> None:
    sandbox.make("parent")
    inner = sandbox.make("parent", "inner")
    sibling = sandbox.make("sibling")
    [nested_child] = sandbox.spawn_busy(inner)
    [sibling_child] = sandbox.spawn_busy(sibling)
    [before] = views(sampler, 1)
    assert {nested_child.pid, sibling_child.pid} <= pids_of(before)

    sampler.set_cgroup_filter((sandbox.path("parent"),))
    [drained] = views(sampler, 1)  # sampled before the change
    assert sibling_child.pid in pids_of(drained)
    [after] = views(sampler, 1)  # the next interval: wholly filtered
    assert pids_of(after) == {nested_child.pid}, after.processes
    assert after.cgroup_filter == (sandbox.path("parent"),)
    assert [row.cgroup for row in after.cgroups] == [sandbox.path("parent", "inner")]
    assert sum(cpu.samples for cpu in after.cpus) == after.samples

    filter_to(sampler, sandbox.path("sibling"))
    [swapped] = views(sampler, 1)  # changed at run time, no recompile
    assert pids_of(swapped) == {sibling_child.pid}

    filter_to(sampler)
    [cleared] = views(sampler, 1)
    assert {nested_child.pid, sibling_child.pid} <= pids_of(cleared)


def test_a_cgroup_removed_while_sampling_ages_out_without_an_error(
    sampler: Any, sandbox: CgroupSandbox
) -> None:
    directory = sandbox.make("short-lived")
    [child] = sandbox.spawn_busy(directory)
    path = sandbox.path("short-lived")
    accumulation = DecayingAccumulation(keep=0.3)

    def next_pair() -> tuple[Interval, Interval]:
        interval = sampler.next_interval()
        assert interval is not None
        return interval, accumulation.add(interval)

    latest, accumulated = next_pair()
    assert path in {row.cgroup for row in build_view(accumulated).cgroups}
    child.kill()
    child.wait()
    sandbox.remove(directory)
    seen_after = []
    for _ in range(8):
        latest, accumulated = next_pair()
        rows = {row.cgroup: row for row in build_view(accumulated).cgroups}
        seen_after.append(path in rows)
        assert not any(path in notice for notice in latest.notices)
    assert seen_after[0], "its last rows stay a while"
    assert not seen_after[-1], seen_after  # and then age out
    assert path not in {row.cgroup for row in build_view(latest).cgroups}


def test_a_hostile_cgroup_name_is_kept_literally_and_shown_printable(
    sampler: Any, sandbox: CgroupSandbox
) -> None:
    name = "evil\x1b[31m[bold]x\tend"  # no "/": a directory name
    directory = sandbox.make(name)
    [child] = sandbox.spawn_busy(directory)
    filter_to(sampler, sandbox.path(name))
    [view] = views(sampler, 1)
    [process] = view.processes
    assert process.pid == child.pid
    assert process.cgroup == sandbox.path(name)
    text = format_text(view)
    assert "\x1b" not in text and "evil\\x1b[31m[bold]x\\x09end" in text
    assert json.loads(format_json(view))["cgroups"][0]["cgroup"] == sandbox.path(name)


def test_command_line_cgroup_shows_only_that_cgroup_and_its_children(
    sandbox: CgroupSandbox,
) -> None:
    sandbox.make("picked")
    inner = sandbox.make("picked", "inner")
    picked = sandbox.make("picked", "direct")
    outside = sandbox.make("outside")
    [inner_child] = sandbox.spawn_busy(inner)
    [direct_child] = sandbox.spawn_busy(picked)
    [outside_child] = sandbox.spawn_busy(outside)
    run = subprocess.run(
        [
            *(sys.executable, "-m", "perftop", "--batch", "--format", "json"),
            *("-n", "3", "-d", "0.5", "--cgroup", str(sandbox.directory / "picked")),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    assert run.returncode == 0, run.stderr
    reports = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(reports) == 3
    seen: set[int] = set()
    for report in reports:
        assert report["cgroup_filter"] == [sandbox.path("picked")]
        for process in report["processes"]:
            seen.add(process["pid"])
            assert process["cgroup"].startswith(sandbox.path("picked") + "/"), process
        for row in report["cgroups"]:
            assert row["cgroup"].startswith(sandbox.path("picked")), row
    assert {inner_child.pid, direct_child.pid} <= seen
    assert outside_child.pid not in seen


def test_command_line_cgroup_of_a_file_is_one_line_and_exit_2(sandbox: CgroupSandbox) -> None:
    sandbox.make("real")
    run = subprocess.run(
        [sys.executable, "-m", "perftop", "--batch", "--cgroup", f"{sandbox.name}/real/cpu.stat"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "not a cgroup" in run.stderr, run.stderr
    assert run.stdout == ""


def test_changing_the_filter_on_the_screen_takes_effect_in_the_next_interval(
    sandbox: CgroupSandbox,
) -> None:
    from perftop.sampling.bcc.source import BccSource
    from perftop.ui.app import PerftopApp
    from tests.ui.conftest import screen_text, table_column, wait_for

    kept_dir, dropped_dir = sandbox.make("kept"), sandbox.make("dropped")
    [kept] = sandbox.spawn_busy(kept_dir)
    [dropped] = sandbox.spawn_busy(dropped_dir)
    live = BccSource(SamplerConfig(interval_s=0.5, frequency_hz=199))
    app = PerftopApp(live)
    shown: dict[str, Any] = {}

    def processes_pane() -> list[str]:
        return [pid for pid in table_column(app, "#processes", "PID") if pid.isdigit()]

    async def main() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: app.snapshots_received >= 2, timeout=60)
            await wait_for(
                pilot,
                lambda: str(dropped.pid) in processes_pane() and str(kept.pid) in processes_pane(),
                timeout=20,
            )
            await pilot.press("c")
            await pilot.pause()
            for character in sandbox.path("kept"):
                await pilot.press(character)
            applied_at = app.snapshots_received
            await pilot.press("enter")
            await pilot.pause()
            shown["header"] = screen_text(app).splitlines()[1]
            # The interval drained right after the change was sampled before it; the next one
            # is wholly filtered.
            await wait_for(pilot, lambda: app.snapshots_received >= applied_at + 2, timeout=20)
            view = app.current_view()
            assert view is not None
            shown["pids"] = {process.pid for process in view.processes}
            shown["rows"] = processes_pane()
            shown["filter"] = view.interval.cgroup_filter
            app.exit()

    try:
        asyncio.run(main())
    finally:
        live.close()
    assert f"cgroup {sandbox.path('kept')}" in shown["header"]
    assert shown["filter"] == (sandbox.path("kept"),)
    assert shown["pids"] == {kept.pid}, shown["pids"]
    assert shown["rows"] == [str(kept.pid)], shown["rows"]
