"""Flame graph (icicle) layout in terminal cells: pure, so the widget only paints.

The root is the top row; each frame's width is its share of its parent's columns, hottest child
leftmost. Children narrower than one cell are merged into nothing (they would be invisible), so
the rows never overflow the width and the drawing is stable between refreshes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from perftop.model.samples import Frame, FunctionKey, StackSample
from perftop.profile.aggregate import CallNode, call_tree, function_key


@dataclass(frozen=True, slots=True)
class FlameBox:
    depth: int
    x: int
    width: int
    frame: Frame
    samples: int
    share: float  # of the root's samples, in percent
    path: tuple[FunctionKey, ...]  # from the root: identifies the box across refreshes


def flame_root(stacks: Iterable[StackSample], names: Mapping[int, str]) -> CallNode:
    """The call tree of `stacks` under one box per process (named from `names`, by PID): the
    call-stack pane's tree (aggregate.call_tree), with a process frame on top."""
    return call_tree(stacks, process_names=names)


def subtree(root: CallNode, path: tuple[FunctionKey, ...]) -> CallNode | None:
    """The node at `path` from `root`, None when the path has left the tree."""
    node = root
    for key in path:
        child = node.children.get(key)
        if child is None:
            return None
        node = child
    return node


def layout(root: CallNode, width: int, max_depth: int | None = None) -> list[FlameBox]:
    """Boxes ordered by depth, then left to right."""
    boxes: list[FlameBox] = []
    if root.samples <= 0 or width <= 0:
        return boxes
    total = root.samples

    def place(node: CallNode, depth: int, x: int, span: int, path: tuple[FunctionKey, ...]) -> None:
        if max_depth is not None and depth >= max_depth:
            return
        # Each edge is its cumulative share rounded: edges never move unless shares do, rows
        # never overflow, and a child under half a cell rounds to nothing and is not drawn.
        consumed = 0
        for child in node.sorted_children():
            assert child.frame is not None
            left = x + (2 * consumed * span + node.samples) // (2 * node.samples)
            consumed += child.samples
            right = x + (2 * consumed * span + node.samples) // (2 * node.samples)
            if right - left < 1:
                continue
            child_path = (*path, function_key(child.frame))
            boxes.append(
                FlameBox(
                    depth,
                    left,
                    right - left,
                    child.frame,
                    child.samples,
                    100.0 * child.samples / total,
                    child_path,
                )
            )
            place(child, depth + 1, left, right - left, child_path)

    place(root, 0, 0, width, ())
    boxes.sort(key=lambda box: (box.depth, box.x))
    return boxes


def zoom(root: CallNode, path: tuple[FunctionKey, ...]) -> CallNode:
    """The subtree at `path` re-rooted (a zoomed flame graph), or `root` if the path is gone."""
    node = root
    for key in path:
        child = node.children.get(key)
        if child is None:
            return root
        node = child
    if node.frame is None:
        return node
    return CallNode(frame=None, samples=node.samples, children={function_key(node.frame): node})


def label(text: str, width: int) -> str:
    """`text` fitted into `width` cells: whole, or cut with an ellipsis, or nothing."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width <= 2:
        return text[:width]
    return text[: width - 1] + "…"
