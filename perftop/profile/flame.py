"""Flame graph (icicle) layout in terminal cells: pure, so the widget only paints.

The root is the top row; each frame's width is its share of its parent's columns, hottest child
leftmost, with hysteresis (SiblingOrder): siblings keep the places they had unless one became
clearly hotter than the one before it. Hottest-first alone swapped two siblings of similar
weight every few seconds, and the selected frame jumped across the screen. Children narrower
than one cell are merged into nothing (they would be invisible), so the rows never overflow the
width and the drawing is stable between refreshes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from perftop.model.samples import Frame, FunctionKey, StackSample
from perftop.profile.aggregate import CallNode, call_tree, function_key, process_frame


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


# A sibling moves left of the one before it only once it has this many times its samples.
REORDER_RATIO = 1.25

Path = tuple[FunctionKey, ...]


class SiblingOrder:
    """The order siblings were drawn in, kept from one layout to the next (hysteresis).

    Each layout reads the previous order of a parent's children and keeps it while it is
    nearly hottest-first: no child has REORDER_RATIO times the samples of the one before it.
    Otherwise (or for a parent not seen before) the children are sorted hottest first again.
    New children go after the known ones, hottest first, and a hot newcomer re-sorts the row.
    Only the parents of the last layout are remembered."""

    def __init__(self) -> None:
        self._previous: dict[Path, tuple[FunctionKey, ...]] = {}
        self._current: dict[Path, tuple[FunctionKey, ...]] = {}

    def children(self, node: CallNode, path: Path) -> list[CallNode]:
        hottest = [(_key(child), child) for child in node.sorted_children()]
        before = self._previous.get(path)
        ordered = hottest
        if before is not None:
            by_key = dict(hottest)
            kept = [(key, by_key[key]) for key in before if key in by_key]
            known = set(before)
            kept += [(key, child) for key, child in hottest if key not in known]
            if all(
                later.samples < REORDER_RATIO * earlier.samples
                for (_, earlier), (_, later) in itertools.pairwise(kept)
            ):
                ordered = kept
        self._current[path] = tuple(key for key, _ in ordered)
        return [child for _, child in ordered]

    def commit(self) -> None:
        """The layout is done: its order is the one the next layout keeps."""
        self._previous, self._current = self._current, {}


def _key(node: CallNode) -> FunctionKey:
    assert node.frame is not None  # only the root has none
    return function_key(node.frame)


def layout(
    root: CallNode,
    width: int,
    max_depth: int | None = None,
    order: SiblingOrder | None = None,
) -> list[FlameBox]:
    """Boxes ordered by depth, then left to right. With `order` (kept by the caller between
    layouts) siblings keep their places until one is clearly hotter (see SiblingOrder)."""
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
        children = node.sorted_children() if order is None else order.children(node, path)
        for child in children:
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
    if order is not None:
        order.commit()
    boxes.sort(key=lambda box: (box.depth, box.x))
    return boxes


def stacks_under(
    stacks: Iterable[StackSample], path: tuple[FunctionKey, ...], names: Mapping[int, str]
) -> list[StackSample]:
    """The stacks through the flame box at `path` (a process box, then its frames outermost
    first), kept whole: what a zoomed flame graph draws, for an export of the zoom."""
    if not path:
        return list(stacks)
    process_key, frames = path[0], path[1:]
    depth = len(frames)
    return [
        stack
        for stack in stacks
        if process_frame(stack.pid, names.get(stack.pid, stack.comm))[:3] == process_key
        and len(stack.frames) >= depth
        and all(frame[:3] == key for frame, key in zip(stack.frames, frames, strict=False))
    ]


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
