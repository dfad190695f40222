from __future__ import annotations

from perftop.profile.aggregate import call_tree, function_key
from perftop.profile.flame import label, layout, zoom
from tests.unit.factories import stack, user

STACKS = [
    stack(user("main"), user("hot"), user("leaf"), samples=6),
    stack(user("main"), user("warm"), samples=3),
    stack(user("main"), user("tiny"), samples=1),
]


def test_widths_follow_shares_hottest_left() -> None:
    boxes = layout(call_tree(STACKS), 100)
    row0 = [(b.frame.symbol, b.x, b.width) for b in boxes if b.depth == 0]
    row1 = [(b.frame.symbol, b.x, b.width) for b in boxes if b.depth == 1]
    row2 = [(b.frame.symbol, b.x, b.width) for b in boxes if b.depth == 2]
    assert row0 == [("main", 0, 100)]
    assert row1 == [("hot", 0, 60), ("warm", 60, 30), ("tiny", 90, 10)]
    assert row2 == [("leaf", 0, 60)]
    assert boxes[1].share == 60.0


def test_boxes_never_overflow_and_invisible_ones_are_dropped() -> None:
    boxes = layout(call_tree(STACKS), 4)
    for depth in {b.depth for b in boxes}:
        row = [b for b in boxes if b.depth == depth]
        assert sum(b.width for b in row) <= 4
        assert all(b.width >= 1 for b in row)
    assert "tiny" not in {b.frame.symbol for b in boxes}  # 10% of 4 cells < half a cell


def test_empty_and_depth_limit() -> None:
    assert layout(call_tree([]), 80) == []
    assert {b.depth for b in layout(call_tree(STACKS), 80, max_depth=1)} == {0}


def test_zoom_reroots_at_a_frame_and_survives_a_vanished_path() -> None:
    root = call_tree(STACKS)
    path = (function_key(user("main")), function_key(user("hot")))
    zoomed = zoom(root, path)
    boxes = layout(zoomed, 50)
    assert [(b.frame.symbol, b.width) for b in boxes] == [("hot", 50), ("leaf", 50)]
    assert boxes[0].share == 100.0
    assert zoom(root, (function_key(user("gone")),)) is root


def test_label_truncation() -> None:
    assert label("function_name", 20) == "function_name"
    assert label("function_name", 6) == "funct…"
    assert label("function_name", 2) == "fu"
    assert label("function_name", 0) == ""
