from __future__ import annotations

from perftop.model.samples import ProcessInfo
from perftop.profile.accumulate import DecayingStacks
from perftop.profile.aggregate import (
    call_tree,
    filter_stacks,
    function_key,
    function_stats,
    merge_stacks,
    process_stats,
)
from tests.unit.factories import kernel, py, python, stack, user


def test_empty_interval_gives_empty_tables() -> None:
    assert process_stats([], {}) == ()
    assert function_stats([]) == ()
    assert call_tree([]).samples == 0


def test_process_shares_and_order() -> None:
    stacks = [
        stack(user("a"), pid=1, samples=3),
        stack(user("b"), pid=2, samples=6),
        stack(user("c"), pid=1, tid=7, samples=1),
    ]
    rows = process_stats(stacks, {2: ProcessInfo(pid=2, user="bob")})
    assert [(r.pid, r.samples, r.percent) for r in rows] == [(2, 6, 60.0), (1, 4, 40.0)]
    assert rows[0].info.user == "bob"
    assert rows[1].info.exited  # no psutil details: the process is gone


def test_process_comm_is_the_most_sampled_name() -> None:
    rows = process_stats(
        [stack(pid=5, comm="worker", samples=5), stack(pid=5, tid=6, comm="main", samples=2)], {}
    )
    assert rows[0].comm == "worker"


def test_self_goes_to_the_leaf_total_to_every_frame() -> None:
    stacks = [
        stack(user("main"), user("work"), user("leaf"), samples=3),
        stack(user("main"), user("work"), samples=1),
    ]
    by_name = {row.symbol: row for row in function_stats(stacks)}
    assert by_name["leaf"].self_samples == 3 and by_name["leaf"].self_percent == 75.0
    assert by_name["work"].self_samples == 1 and by_name["work"].total_samples == 4
    assert by_name["main"].self_samples == 0 and by_name["main"].total_percent == 100.0
    assert function_stats(stacks)[0].symbol == "leaf"


def test_recursion_counted_once_per_stack() -> None:
    rows = function_stats([stack(user("fib"), user("fib"), user("fib"), samples=2)])
    assert [(r.symbol, r.self_samples, r.total_samples) for r in rows] == [("fib", 2, 2)]
    assert rows[0].total_percent == 100.0


def test_python_recursion_on_other_lines_counts_once_per_stack() -> None:
    # descend() calling itself from line 5 and running line 7 at the leaf: one function
    outer, inner = python("descend", line=5), python("descend", line=7)
    rows = function_stats([stack(py("main"), outer, outer, inner, samples=4)])
    by_name = {row.symbol: row for row in rows}
    descend = by_name[outer.symbol]
    assert (descend.self_samples, descend.total_samples, descend.total_percent) == (4, 4, 100.0)
    assert descend.python


def test_same_name_in_kernel_and_user_are_different_functions() -> None:
    rows = function_stats([stack(user("read"), kernel("read"))])
    assert {(r.symbol, r.kernel) for r in rows} == {("read", True), ("read", False)}


def test_stack_without_frames_counts_for_the_process_only() -> None:
    stacks = [stack(samples=2), stack(user("x"), samples=2)]
    assert process_stats(stacks, {})[0].samples == 4
    (row,) = function_stats(stacks)
    assert row.self_percent == 50.0


def test_call_tree_for_a_process_hottest_branch_first() -> None:
    stacks = [
        stack(user("main"), user("cold"), samples=1, pid=1),
        stack(user("main"), user("hot"), user("leaf"), samples=5, pid=1),
        stack(user("other"), samples=9, pid=2),
    ]
    root = call_tree(stacks, pid=1)
    assert root.samples == 6
    (main,) = root.sorted_children()
    assert [n.frame.symbol for n in main.sorted_children() if n.frame] == ["hot", "cold"]
    assert main.sorted_children()[0].sorted_children()[0].self_samples == 5


def test_call_tree_for_a_function_keeps_callers_and_callees() -> None:
    stacks = [
        stack(user("main"), user("parse"), user("lex"), samples=2),
        stack(user("main"), user("render"), samples=7),
    ]
    root = call_tree(stacks, function=function_key(user("parse")))
    assert root.samples == 2
    (main,) = root.sorted_children()
    (parse,) = main.sorted_children()
    assert [n.frame.symbol for n in parse.sorted_children() if n.frame] == ["lex"]


def test_merge_joins_identical_chains() -> None:
    merged = merge_stacks([stack(user("a"), samples=1), stack(user("a"), samples=2)])
    assert len(merged) == 1 and merged[0].samples == 3 and merged[0].period == 30


def test_filter_by_pid_and_text() -> None:
    stacks = [
        stack(user("parse"), pid=1, comm="web"),
        stack(user("zip"), pid=2, comm="backup"),
    ]
    assert [s.pid for s in filter_stacks(stacks, pids=[2])] == [2]
    assert [s.pid for s in filter_stacks(stacks, text="PARSE")] == [1]
    assert [s.pid for s in filter_stacks(stacks, text="back")] == [2]
    assert filter_stacks(stacks, pids=[1], text="zip") == ()


def test_decay_keeps_hot_chains_and_drops_cold_ones() -> None:
    decaying = DecayingStacks(0.5)
    decaying.add([stack(user("a"), samples=10), stack(user("b"), samples=1)])
    second = decaying.add([stack(user("a"), samples=10)])
    weights = {s.frames[0].symbol: s.samples for s in second}
    assert weights == {"a": 15}  # b decayed to 0.5 of a sample: dropped


def test_decay_at_the_default_keep_lets_every_cold_chain_go() -> None:
    """At keep 0.8, rounding each interval held small weights forever (round(2 * 0.8) == 2):
    under fork churn the accumulation grew with every process ever seen."""
    decaying = DecayingStacks(0.8)
    decaying.add([stack(user("a"), pid=pid, samples=pid % 5 + 1) for pid in range(1, 101)])
    weights = [[s.samples for s in decaying.add([])] for _ in range(12)]
    assert weights[0] and max(weights[0]) == 4  # 5 * 0.8
    assert weights[-1] == [] and len(decaying) == 0
    hot = [stack(user("hot"), samples=5)]
    for _ in range(60):
        steady = decaying.add(hot)
    assert [s.samples for s in steady] == [25]  # 5 / (1 - 0.8)
