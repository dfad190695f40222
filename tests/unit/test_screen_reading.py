"""Pure parts of issue 19's points 8 and 9: the by-module table, exited processes of one
command rolled up, flame siblings that keep their places, a flame zoom's stacks, and the
duration an accumulation stands for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perftop.model.samples import Interval, ProcessInfo
from perftop.model.stats import ProcessStat, View, ViewFilter
from perftop.profile.accumulate import DecayingAccumulation
from perftop.profile.aggregate import call_tree, module_stats, process_frame
from perftop.profile.flame import SiblingOrder, layout, stacks_under
from perftop.profile.view import build_view
from perftop.viewmodel import process_rows
from perftop.viewmodel.controls import ViewOptions
from perftop.viewmodel.export import export_request
from perftop.viewmodel.tables import ModuleKey, module_rows
from tests.unit.factories import kernel, stack, user


def interval(*stacks, processes=None, interval_s: float = 1.0) -> Interval:  # type: ignore[no-untyped-def]
    return Interval(
        timestamp=1000.0,
        interval_s=interval_s,
        event="cpu-clock",
        frequency_hz=99,
        lost={},
        cpus=(),
        stacks=tuple(stacks),
        processes=processes or {},
    )


# By module (`d`) ----------------------------------------------------------------------------


def test_modules_sum_their_functions_self_and_count_a_stack_once_for_total() -> None:
    stacks = [
        stack(user("main", "app"), user("memcpy", "libc.so.6"), samples=6),
        stack(user("main", "app"), user("strlen", "libc.so.6"), samples=3),
        stack(user("main", "app"), user("work", "app"), kernel("do_syscall_64"), samples=1),
    ]
    rows = {row.module: row for row in module_stats(stacks)}
    assert rows["libc.so.6"].self_samples == 9 and rows["libc.so.6"].symbol == "2 functions"
    assert rows["libc.so.6"].self_percent == pytest.approx(90.0)
    assert rows["app"].self_samples == 0 and rows["app"].total_samples == 10
    assert rows["[kernel]"].kernel and rows["[kernel]"].total_samples == 1
    assert module_stats(stacks)[0].module == "libc.so.6"


def test_module_rows_are_keyed_by_module_not_by_function() -> None:
    view = build_view(interval(stack(user("main", "app"), user("memcpy", "libc.so.6"))))
    rows = module_rows(view)
    assert rows[0].key == ModuleKey("libc.so.6", False)
    assert not isinstance(rows[0].key, tuple)  # the stack pane follows functions only


# Exited processes rolled up -----------------------------------------------------------------


def test_a_fork_loops_exited_processes_are_one_row() -> None:
    forks = tuple(
        ProcessStat(500 + n, "sh", 2, 0.5, ProcessInfo(500 + n, exited=True)) for n in range(24)
    )
    live = ProcessStat(42, "make", 40, 10.0, ProcessInfo(42, user="root"))
    lone = ProcessStat(77, "cc1", 4, 1.0, ProcessInfo(77, exited=True))
    view = replace(build_view(interval()), processes=(live, lone, *forks))
    rows = process_rows(view)
    assert len(rows) == 3
    rolled = next(row for row in rows if row.key == ("exited", "sh"))
    assert rolled.cells[0] == "×24" and "sh (24 exited)" in rolled.cells
    assert rolled.cells[2] == "48" and rolled.cells[3] == "12.0"  # samples and share summed
    assert rolled.dim
    assert rows[0].key == ("exited", "sh")  # sorted by its summed samples, hottest first
    assert any(row.key == 77 for row in rows)  # one exited process keeps its own row


# Flame siblings keep their places -----------------------------------------------------------


def siblings(order: SiblingOrder | None, a: int, b: int) -> list[str]:
    root = call_tree(
        [
            stack(user("main"), user("alpha"), samples=a),
            stack(user("main"), user("beta"), samples=b),
        ]
    )
    return [box.frame.symbol for box in layout(root, 100, order=order) if box.depth == 1]


def test_siblings_of_similar_weight_do_not_swap_places() -> None:
    order = SiblingOrder()
    assert siblings(order, 52, 48) == ["alpha", "beta"]
    assert siblings(order, 48, 52) == ["alpha", "beta"]  # hottest-first alone swaps them
    assert siblings(None, 48, 52) == ["beta", "alpha"]
    assert siblings(order, 45, 55) == ["alpha", "beta"]
    assert siblings(order, 30, 70) == ["beta", "alpha"]  # clearly hotter: it moves left
    assert siblings(order, 52, 48) == ["beta", "alpha"]  # and stays there


# A flame zoom's stacks, and an accumulation's duration ---------------------------------------


def test_the_stacks_under_a_flame_box_are_kept_whole() -> None:
    stacks = [
        stack(user("main"), user("hot"), user("leaf"), pid=1, comm="a", samples=5),
        stack(user("main"), user("cold"), pid=1, comm="a", samples=2),
        stack(user("main"), user("hot"), pid=2, comm="b", samples=7),
    ]
    names = {1: "a", 2: "b"}
    path = (process_frame(1, "a")[:3], user("main")[:3], user("hot")[:3])
    assert stacks_under(stacks, path, names) == [stacks[0]]
    assert stacks_under(stacks, path[:2], names) == stacks[:2]
    assert stacks_under(stacks, (), names) == stacks


def test_an_accumulation_states_the_decayed_time_its_samples_stand_for() -> None:
    """A pprof of it said `Duration: 1s` beside ~5 s of samples: 233% CPU for one thread."""
    accumulation = DecayingAccumulation(keep=0.8)
    busy = stack(user("spin"), samples=99)  # one thread on a CPU at 99 Hz: 100%
    for _ in range(30):
        accumulated = accumulation.add(interval(busy))
    view = build_view(accumulated)
    request = export_request(view, ViewOptions(accumulated=True))
    assert request.meta.duration_s == pytest.approx(5.0, rel=0.01)  # 1 / (1 - 0.8)
    cpu = view.samples / view.frequency_hz / request.meta.duration_s
    assert cpu == pytest.approx(1.0, rel=0.02)
    accumulation.reset()
    assert accumulation.add(interval(busy)).interval_s == 1.0


def test_export_of_a_flame_zoom_names_it_and_writes_its_stacks() -> None:
    stacks = (
        stack(user("main"), user("hot"), pid=1, comm="a", samples=5),
        stack(user("main"), user("cold"), pid=1, comm="a", samples=2),
    )
    view = build_view(interval(*stacks), ViewFilter())
    request = export_request(view, ViewOptions(), ["a [1]", "main", "hot"], stacks[:1])
    assert request.stacks == stacks[:1]
    assert "all processes › a [1] › main › hot" in request.summary
    assert "5 samples in 1 stacks" in request.summary
    assert export_request(view, ViewOptions()).stacks == stacks


def test_view_type_is_what_the_tables_read() -> None:
    assert isinstance(build_view(interval()), View)
