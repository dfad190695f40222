"""The flame graph and the call-stack pane read one call tree."""

from __future__ import annotations

from perftop.profile.aggregate import CallNode, call_tree, process_frame
from perftop.profile.flame import flame_root, subtree
from tests.unit.factories import kernel, stack, user


def shape(node: CallNode) -> tuple[object, ...]:
    return (
        node.frame,
        node.samples,
        node.self_samples,
        tuple(shape(child) for child in node.sorted_children()),
    )


def test_under_its_process_box_the_flame_tree_is_the_panes_tree() -> None:
    stacks = [
        stack(user("main"), user("work"), pid=1, samples=3),
        stack(user("main"), kernel("do_syscall_64"), pid=1, samples=1),
        stack(user("main"), user("work"), pid=2, comm="other", samples=5),
    ]
    root = flame_root(stacks, {1: "alpha"})
    assert root.samples == 9
    for pid, name in ((1, "alpha"), (2, "other")):
        box = subtree(root, (process_frame(pid, name)[:3],))
        assert box is not None
        pane = call_tree(stacks, pid=pid)
        assert box.samples == pane.samples
        assert tuple(shape(c) for c in box.sorted_children()) == tuple(
            shape(c) for c in pane.sorted_children()
        )


def test_a_path_that_left_the_tree_is_none() -> None:
    root = flame_root([stack(user("main"), pid=1)], {})
    assert subtree(root, (("gone", "app", False),)) is None
    assert subtree(root, ()) is root
