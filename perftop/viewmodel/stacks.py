"""The call-stack pane: the stacks behind a process or a function, and why frames lack symbols."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from perftop.model.reasons import JIT_REMEDY as JIT_REMEDY  # re-exported by the package
from perftop.model.samples import Frame, FrameKind, FunctionKey, StackSample
from perftop.model.stats import View
from perftop.profile.aggregate import CallNode, call_tree, function_key
from perftop.profile.view import stacks_of_cgroup
from perftop.sanitize import printable

# Why a frame has no symbol ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Explanation:
    reason: str
    remedy: str | None

    @property
    def text(self) -> str:
        return f"{self.reason}: {self.remedy}" if self.remedy else self.reason


def explain_unresolved(frame: Frame) -> Explanation | None:
    """Why `frame` has no symbol and what the user can do about it."""
    reason = frame.unresolved_reason
    if reason is None:
        return None
    return Explanation(reason.text, reason.remedy(printable(frame.module, 40)))


def _module(frame: Frame) -> str:
    """What the pane says after a frame's symbol. Nothing for a Python frame: its symbol names
    its file already ("f (work.py:12)"), and the full path pushed the self share out of a
    40-column pane; the functions table and the flame graph's detail line show the path."""
    return "" if frame.python is not None else printable(frame.module, 40)


# The tree ----------------------------------------------------------------------------------


class StackNode:
    """One line of the call-stack pane; `path` identifies it across refreshes.

    Its children are converted when first asked for: the pane is rebuilt every interval and
    shows the unfolded branches only, so converting the whole tree (up to `max_nodes` lines
    with their printable strings) was most of the pane's cost.
    """

    __slots__ = (
        "_call",
        "_children",
        "_tree",
        "explanation",
        "has_children",
        "kind",
        "mark",
        "module",
        "path",
        "self_share",
        "share",
        "symbol",
    )

    def __init__(
        self,
        path: tuple[FunctionKey, ...],
        share: float,  # percent of the root's samples, inclusive
        self_share: float,
        kind: FrameKind | None,  # None for the root and for folded lines
        symbol: str,  # printable
        module: str,  # printable
        explanation: Explanation | None,  # why the frame has no symbol, and what to do
        call: CallNode | None = None,  # its node in the call tree, when it has children
        tree: _Tree | None = None,
    ) -> None:
        self.path = path
        self.share = share
        self.self_share = self_share
        self.kind = kind
        self.mark = kind.mark if kind is not None else ""  # "[k]", "[.]", "[py]"
        self.symbol = symbol
        self.module = module
        self.explanation = explanation
        self._call = call
        self._tree = tree
        self._children: tuple[StackNode, ...] | None = None if call is not None else ()
        self.has_children = call is not None and bool(call.children)

    @property
    def children(self) -> tuple[StackNode, ...]:
        if self._children is None:
            assert self._call is not None and self._tree is not None
            self._children = self._tree.convert(self._call, self.path)
            self._call = None  # the call tree below is no longer needed here
        return self._children

    def __repr__(self) -> str:
        return f"StackNode({self.mark} {self.symbol!r} {self.share:.1f}%)"


class _Tree:
    """What every node of one tree shares: its whole, its fold threshold, its line budget."""

    __slots__ = ("budget", "min_share", "whole")

    def __init__(self, whole: int, min_share: float, max_nodes: int) -> None:
        self.whole = whole
        self.min_share = min_share
        self.budget = max_nodes

    def share(self, samples: int) -> float:
        return 100.0 * samples / self.whole if self.whole else 0.0

    def convert(self, parent: CallNode, path: tuple[FunctionKey, ...]) -> tuple[StackNode, ...]:
        kept: list[StackNode] = []
        folded_samples = folded_count = 0
        share, min_share = self.share, self.min_share
        for child in parent.sorted_children():
            if child.frame is None:  # only the root has no frame
                continue
            if share(child.samples) < min_share or self.budget <= 0:
                folded_samples += child.samples
                folded_count += 1
                continue
            self.budget -= 1
            frame = child.frame
            kept.append(
                StackNode(
                    path=(*path, function_key(frame)),
                    share=share(child.samples),
                    self_share=share(child.self_samples),
                    kind=frame.kind,
                    symbol=printable(frame.symbol, 160),
                    module=_module(frame),
                    explanation=explain_unresolved(frame),
                    call=child if child.children else None,
                    tree=self,
                )
            )
        if folded_count:
            kept.append(
                StackNode(
                    path=(*path, ("", f"folded {folded_count}", False)),
                    share=share(folded_samples),
                    self_share=0.0,
                    kind=None,
                    symbol=f"… {folded_count} more under {min_share:g}%",
                    module="",
                    explanation=None,
                )
            )
        return tuple(kept)


def cgroup_stack_tree(view: View, cgroup: str, title: str) -> StackNode:
    """The stacks of one cgroup row of the view (before a zoom), hottest branch first."""
    return stack_tree(stacks_of_cgroup(view.unzoomed_stacks, view.interval, cgroup), title)


def stack_tree(
    stacks: Iterable[StackSample],
    title: str,
    pid: int | None = None,
    function: FunctionKey | None = None,
    min_share: float = 0.5,
    max_nodes: int = 2000,
) -> StackNode:
    """The stacks behind a process or a function, hottest branch first.

    Branches under `min_share` percent are folded into one "… n more" line per parent, and at
    most `max_nodes` lines are converted, in the order they are asked for, so a refresh stays
    cheap however many stacks there are and however much the user unfolds.
    """
    root = call_tree(stacks, pid=pid, function=function)
    tree = _Tree(root.samples, min_share, max_nodes)
    return StackNode(
        path=(),
        share=100.0 if root.samples else 0.0,
        self_share=tree.share(root.self_samples),
        kind=None,
        symbol=title,
        module="",
        explanation=None,
        call=root,
        tree=tree,
    )
