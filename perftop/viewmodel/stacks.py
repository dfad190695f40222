"""The call-stack pane: the stacks behind a process or a function, and why frames lack symbols."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from perftop.model.reasons import JIT_REMEDY as JIT_REMEDY  # re-exported by the package
from perftop.model.samples import Frame, FrameKind, FunctionKey, StackSample
from perftop.model.stats import View
from perftop.profile.aggregate import CallNode, call_tree, caller_tree, function_key
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


# A chain of at least this many frames that each call one function only is one line.
MIN_RUN = 4
# The path element of a collapsed chain's line, after the path of the chain's first frame:
# the line keeps its path (and so its fold state and the cursor) when the chain grows or
# shrinks at its end from one interval to the next.
RUN_KEY = ("", "run", False)


class StackNode:
    """One line of the call-stack pane; `path` identifies it across refreshes.

    Its children are converted when first asked for: the pane is rebuilt every interval and
    shows the unfolded branches only, so converting the whole tree (up to `max_nodes` lines
    with their printable strings) was most of the pane's cost.

    A chain of `MIN_RUN` or more frames that each have exactly one callee (and a self share
    under the fold threshold) is one node, a run ("⋯ 21 frames: main → … → parse"): its share
    is the first frame's, its self share the frames' together, its children the last frame's.
    `hidden_frames` are the frames it stands for, outermost first, each an ordinary node
    whose only child is the next one (the last one's children are the run's); for any other
    node they are ().
    """

    __slots__ = (
        "_call",
        "_children",
        "_hidden",
        "_run",
        "_tree",
        "explanation",
        "has_children",
        "kind",
        "mark",
        "module",
        "path",
        "run_length",
        "self_share",
        "share",
        "symbol",
    )

    def __init__(
        self,
        path: tuple[FunctionKey, ...],
        share: float,  # percent of the root's samples, inclusive
        self_share: float,
        kind: FrameKind | None,  # None for the root, folded lines and runs
        symbol: str,  # printable
        module: str,  # printable
        explanation: Explanation | None,  # why the frame has no symbol, and what to do
        call: CallNode | None = None,  # its node in the call tree, when it has children
        tree: _Tree | None = None,
        run: tuple[CallNode, ...] = (),  # the call-tree nodes of a run, outermost first
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
        self._run = run
        self._hidden: tuple[StackNode, ...] | None = None
        self.run_length = len(run)

    @property
    def children(self) -> tuple[StackNode, ...]:
        if self._children is None:
            if self._hidden:  # a run's frames are converted: its last one's children, once
                self._children = self._hidden[-1].children
            elif self._run:  # without converting the frames a folded run hides
                assert self._tree is not None
                self._children = self._tree.convert(self._run[-1], self._last_frame_path())
            else:
                assert self._call is not None and self._tree is not None
                self._children = self._tree.convert(self._call, self.path)
            self._call = None  # the call tree below is no longer needed here
        return self._children

    @property
    def hidden_frames(self) -> tuple[StackNode, ...]:
        """The frames a run stands for, outermost first; () for a node that is not a run."""
        if self._hidden is None:
            tree = self._tree
            self._hidden = tree.run_frames(self._run, self.path[:-2]) if tree and self._run else ()
            if self._hidden and self._children is not None:  # the run's children: one copy
                self._hidden[-1]._children = self._children
                self._hidden[-1]._call = None
        return self._hidden

    def _last_frame_path(self) -> tuple[FunctionKey, ...]:
        return (*self.path[:-2], *(call.frame[:3] for call in self._run if call.frame))

    def __repr__(self) -> str:
        return f"StackNode({self.mark} {self.symbol!r} {self.share:.1f}%)"


def single_call_chain(node: CallNode, max_self: float = 0.0) -> tuple[CallNode, ...]:
    """`node` and the frames below it while each has exactly one callee and no self samples
    or fewer than `max_self`: the frames a run would stand for. The first frame that branches,
    ends the stack or spends time of its own is not in it but is the run's child, so the frame
    the time goes to in a deep chain is the line below the run, not hidden in it."""
    chain = []
    while len(node.children) == 1 and (not node.self_samples or node.self_samples < max_self):
        chain.append(node)
        (node,) = node.children.values()
    return tuple(chain)


def run_label(first: Frame, last: Frame, length: int) -> str:
    """The line of a run: how many frames it hides, and the first and last of them."""
    return f"⋯ {length} frames: {printable(first.symbol, 60)} → … → {printable(last.symbol, 60)}"


class _Tree:
    """What every node of one tree shares: its whole, its fold threshold, its line budget."""

    __slots__ = ("budget", "max_self", "min_share", "whole")

    def __init__(self, whole: int, min_share: float, max_nodes: int) -> None:
        self.whole = whole
        self.min_share = min_share
        self.budget = max_nodes
        # A frame with a share of its own under the fold threshold can hide in a run: a
        # branch that small would be folded away too.
        self.max_self = whole * min_share / 100.0

    def share(self, samples: int) -> float:
        return 100.0 * samples / self.whole if self.whole else 0.0

    def frame_node(self, call: CallNode, path: tuple[FunctionKey, ...]) -> StackNode:
        frame = call.frame
        assert frame is not None
        return StackNode(
            path=path,
            share=self.share(call.samples),
            self_share=self.share(call.self_samples),
            kind=frame.kind,
            symbol=printable(frame.symbol, 160),
            module=_module(frame),
            explanation=explain_unresolved(frame),
            call=call if call.children else None,
            tree=self,
        )

    def run_frames(
        self, run: tuple[CallNode, ...], path: tuple[FunctionKey, ...]
    ) -> tuple[StackNode, ...]:
        """The nodes of a run's frames under `path`, each the only child of the one before;
        the last one's children are converted as any node's are."""
        nodes: list[StackNode] = []
        for position, call in enumerate(run):
            frame = call.frame
            assert frame is not None
            path = (*path, function_key(frame))
            node = self.frame_node(call, path)
            if position < len(run) - 1:
                node._call = None  # its one child is the next frame, not a run of the rest
            nodes.append(node)
        for parent, child in itertools.pairwise(nodes):
            parent._children = (child,)
        return tuple(nodes)

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
            run = single_call_chain(child, self.max_self) if len(child.children) == 1 else ()
            if len(run) >= MIN_RUN:
                kept.append(self.run_node(run, path))
            else:
                kept.append(self.frame_node(child, (*path, function_key(child.frame))))
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

    def run_node(self, run: tuple[CallNode, ...], path: tuple[FunctionKey, ...]) -> StackNode:
        first, last = run[0].frame, run[-1].frame
        assert first is not None and last is not None
        return StackNode(
            path=(*path, function_key(first), RUN_KEY),
            share=self.share(run[0].samples),
            self_share=self.share(sum(call.self_samples for call in run)),
            kind=None,
            symbol=run_label(first, last, len(run)),
            module="",
            explanation=None,
            call=run[-1],
            tree=self,
            run=run,
        )


def cgroup_stack_tree(view: View, cgroup: str, title: str, *, callers: bool = False) -> StackNode:
    """The stacks of one cgroup row of the view (before a zoom), hottest branch first."""
    stacks = stacks_of_cgroup(view.unzoomed_stacks, view.interval, cgroup)
    return stack_tree(stacks, title, callers=callers)


def stack_tree(
    stacks: Iterable[StackSample],
    title: str,
    pid: int | None = None,
    function: FunctionKey | None = None,
    min_share: float = 0.5,
    max_nodes: int = 2000,
    *,
    callers: bool = False,
) -> StackNode:
    """The stacks behind a process or a function, hottest branch first; with `callers`, bottom
    up: the function's callers (or, for a process, the leaves and their callers), as
    `caller_tree` builds them.

    Branches under `min_share` percent are folded into one "… n more" line per parent, and at
    most `max_nodes` lines are converted, in the order they are asked for, so a refresh stays
    cheap however many stacks there are and however much the user unfolds.
    """
    if callers:
        root = caller_tree(stacks, pid=pid, function=function)
    else:
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
