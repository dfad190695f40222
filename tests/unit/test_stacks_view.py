"""The call-stack pane's tree for deep stacks (issue 19): chains of single calls collapsed into
one line with their count and share, and the callers view (bottom-up), recursion counted once."""

from __future__ import annotations

import itertools

from perftop.model.samples import StackSample
from perftop.profile.aggregate import caller_tree
from perftop.viewmodel import StackNode, stack_tree
from perftop.viewmodel.stacks import MIN_RUN, RUN_KEY
from tests.unit.factories import callees, stack, user

F = ("f", "app", False)


def chain(samples: int, *symbols: str) -> StackSample:
    return stack(*(user(symbol) for symbol in symbols), samples=samples)


def numbered(count: int) -> tuple[str, ...]:
    return tuple(f"c{index:02d}" for index in range(1, count + 1))


def symbols(nodes: tuple[StackNode, ...]) -> list[str]:
    return [node.symbol for node in nodes]


def frames_down(node: StackNode) -> list[str]:
    """The symbols of the hottest path below `node`, frame by frame, runs opened."""
    found = []
    while callees(node):
        node = callees(node)[0]
        found.append(node.symbol)
    return found


# Edge cases --------------------------------------------------------------------------------


def test_no_stacks_make_an_empty_tree_either_way() -> None:
    for callers in (False, True):
        tree = stack_tree([], "t", callers=callers)
        assert tree.children == () and tree.share == 0.0 and tree.hidden_frames == ()
    assert stack_tree([chain(3, "main")], "t", function=F, callers=True).children == ()


def test_a_single_frame_is_one_line_not_a_run() -> None:
    (only,) = stack_tree([chain(5, "only")], "t").children
    assert (only.symbol, only.share, only.self_share) == ("only", 100.0, 100.0)
    assert only.run_length == 0 and only.hidden_frames == () and only.children == ()
    # Bottom-up, the leaf is the time spent: it says so, and nothing calls it.
    (leaf,) = stack_tree([chain(5, "only")], "t", callers=True).children
    assert (leaf.symbol, leaf.self_share, leaf.children) == ("only", 100.0, ())


# Runs of single calls ----------------------------------------------------------------------


def test_a_deep_chain_is_one_line_with_its_count_and_the_leaf_below_it() -> None:
    """23 frames that each call one function, then the leaf: one run line, then the leaf."""
    tree = stack_tree([chain(40, *numbered(23), "the_leaf")], "t")
    (run,) = tree.children
    assert run.symbol == "⋯ 23 frames: c01 → … → c23"
    assert (run.run_length, run.share, run.kind, run.mark) == (23, 100.0, None, "")
    (leaf,) = run.children
    assert (leaf.symbol, leaf.share, leaf.self_share) == ("the_leaf", 100.0, 100.0)


def test_the_hidden_frames_are_the_chain_and_lead_to_the_runs_children() -> None:
    tree = stack_tree([chain(40, *numbered(23), "the_leaf")], "t")
    (run,) = tree.children
    hidden = run.hidden_frames
    assert symbols(hidden) == list(numbered(23))
    for parent, child in itertools.pairwise(hidden):
        assert parent.children == (child,) and parent.has_children
    assert hidden[-1].children is run.children  # the same leaf, converted once
    # Paths: each frame's the path of the chain so far; the run's, its first frame's, marked
    # (so it stays the same line when the chain's end moves).
    assert hidden[0].path == (("c01", "app", False),)
    assert run.path == (*hidden[0].path, RUN_KEY)
    assert run.children[0].path == (*hidden[-1].path, ("the_leaf", "app", False))
    assert frames_down(tree) == [*numbered(23), "the_leaf"]


def test_a_folded_run_converts_its_children_not_its_frames() -> None:
    """The pane shows a folded run's line and what it leads to; the frames it hides are made
    printable only when it is unfolded, and then its children are the ones already shown."""
    (run,) = stack_tree([chain(40, *numbered(23), "the_leaf")], "t").children
    assert run._hidden is None  # the view model's own record: reading it converts nothing
    (leaf,) = run.children
    assert leaf.path[-1] == ("the_leaf", "app", False) and len(leaf.path) == 24
    assert run._hidden is None
    assert run.hidden_frames[-1].children == (leaf,) and run.hidden_frames[-1].children[0] is leaf


def test_only_chains_of_at_least_four_frames_collapse() -> None:
    short = stack_tree([chain(1, *numbered(MIN_RUN - 1), "leaf")], "t")
    assert symbols(short.children) == ["c01"] and short.children[0].run_length == 0
    assert frames_down(short) == [*numbered(MIN_RUN - 1), "leaf"]
    (run,) = stack_tree([chain(1, *numbered(MIN_RUN), "leaf")], "t").children
    assert run.symbol == f"⋯ {MIN_RUN} frames: c01 → … → c{MIN_RUN:02d}"


def test_a_run_ends_where_the_calls_branch_and_its_share_is_the_whole_chains() -> None:
    """main -> a -> b -> c -> d, then d calls x and y: the run is main .. c, d (which
    branches) under it; a chain under the branch is a run of its own."""
    stacks = [
        chain(60, "main", "a", "b", "c", "d", "x", "x1", "x2", "x3", "x_leaf"),
        chain(40, "main", "a", "b", "c", "d", "y"),
    ]
    (run,) = stack_tree(stacks, "t").children
    assert run.symbol == "⋯ 4 frames: main → … → c" and run.share == 100.0
    (d,) = run.children
    assert (d.symbol, d.run_length) == ("d", 0)
    x_run, y = d.children
    assert x_run.symbol == "⋯ 4 frames: x → … → x3" and x_run.share == 60.0
    assert symbols(x_run.children) == ["x_leaf"]
    assert (y.symbol, y.share, y.run_length) == ("y", 40.0, 0)


def test_a_frame_with_time_of_its_own_is_not_hidden_in_a_run() -> None:
    """c05 spends a fifth of the time itself: the run stops before it, so the line that says
    `self 20.0%` is on screen, not folded into "⋯"; a frame with a self share under the fold
    threshold (0.5%) stays in the run, and the run's line sums it."""
    stacks = [
        chain(800, *numbered(10), "leaf"),
        chain(200, *numbered(5)),
        chain(4, *numbered(2)),  # 0.4% of its own in c02
    ]
    (run,) = stack_tree(stacks, "t").children
    assert run.symbol == "⋯ 4 frames: c01 → … → c04"
    assert round(run.self_share, 1) == 0.4
    (c05,) = run.children
    assert (c05.symbol, round(c05.self_share, 1), c05.run_length) == ("c05", 19.9, 0)
    (inner_run,) = c05.children
    assert inner_run.symbol == "⋯ 5 frames: c06 → … → c10"


def test_sibling_runs_have_paths_of_their_own() -> None:
    stacks = [chain(50, "main", *(f"a{i}" for i in range(6))), chain(50, "main", *numbered(6))]
    (main,) = stack_tree(stacks, "t").children
    first, second = main.children
    assert first.run_length == second.run_length == 5
    assert first.path != second.path
    assert first.path[-1] == second.path[-1] == RUN_KEY


def test_a_run_line_shows_hostile_names_literally() -> None:
    evil = "\x1b[31mevil[/]"
    tree = stack_tree([chain(1, "[b]first", "b", "c", evil, "leaf")], "t")
    (run,) = tree.children
    assert run.symbol == "⋯ 4 frames: [b]first → … → \\x1b[31mevil[/]"
    assert "\x1b" not in run.symbol
    assert run.hidden_frames[-1].symbol == "\\x1b[31mevil[/]"


def test_a_long_recursion_is_one_run() -> None:
    """120 calls of one function, the case that once blew up the tree: one line of 119, the
    innermost call below it."""
    (run,) = stack_tree([chain(5, *["recurse"] * 120)], "t").children
    assert run.symbol == "⋯ 119 frames: recurse → … → recurse"
    assert len(run.hidden_frames) == 119 and symbols(run.children) == ["recurse"]


# Callers (bottom-up) -----------------------------------------------------------------------


def test_the_callers_of_a_function_are_its_children_out_to_main() -> None:
    stacks = [
        chain(30, "main", "serve", "f", "work"),
        chain(10, "main", "serve", "f"),
        chain(20, "main", "batch", "f"),
        chain(40, "main", "other"),  # not through f: not counted
    ]
    tree = stack_tree(stacks, "[.] f", function=F, callers=True)
    assert tree.symbol == "[.] f" and tree.share == 100.0
    assert tree.self_share == 50.0  # the stacks that end in f: 30 of 60
    serve, batch = tree.children
    assert (serve.symbol, serve.share, serve.self_share) == ("serve", 200 / 3, 0.0)
    assert (batch.symbol, round(batch.share, 1)) == ("batch", 33.3)
    assert symbols(serve.children) == ["main"] and serve.children[0].children == ()


def test_recursion_is_counted_once_per_stack_from_the_outermost_call() -> None:
    """f calls g, which calls f again: the stack counts once for f, and its callers are the
    way into the outermost f (main), not f itself."""
    stacks = [chain(10, "main", "f", "g", "f", "leaf"), chain(5, "main", "f", "f", "f")]
    root = caller_tree(stacks, function=F)
    assert root.samples == 15 and root.self_samples == 5
    assert list(root.children) == [("main", "app", False)]
    assert root.children[("main", "app", False)].samples == 15
    assert root.children[("main", "app", False)].children == {}


def test_callers_of_a_function_called_only_from_the_top_have_none() -> None:
    tree = stack_tree([chain(4, "f", "leaf")], "f", function=F, callers=True)
    assert tree.children == () and tree.share == 100.0 and tree.self_share == 0.0


def test_the_callers_of_a_process_start_from_its_leaves() -> None:
    stacks = [
        chain(60, "main", "parse", "lex"),
        chain(30, "main", "eval", "lex"),
        chain(10, "main", "eval"),
        StackSample(2, 2, "other", (user("lex"),), 99, 0),  # another process
    ]
    tree = stack_tree(stacks, "PID 100 app", pid=100, callers=True)
    lex, eval_ = tree.children
    assert (lex.symbol, lex.share, lex.self_share) == ("lex", 90.0, 90.0)
    assert (eval_.symbol, eval_.share, eval_.self_share) == ("eval", 10.0, 10.0)
    parse, eval_caller = lex.children
    assert (parse.symbol, parse.share, parse.self_share) == ("parse", 60.0, 0.0)
    assert (eval_caller.symbol, eval_caller.share) == ("eval", 30.0)
    assert symbols(parse.children) == ["main"]


def test_a_deep_chain_of_callers_is_a_run_too() -> None:
    tree = stack_tree([chain(9, *numbered(20), "f")], "f", function=F, callers=True)
    (run,) = tree.children
    assert run.symbol == "⋯ 19 frames: c20 → … → c02"
    assert symbols(run.children) == ["c01"]
