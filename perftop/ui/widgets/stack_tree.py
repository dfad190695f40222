"""The call-stack pane: the stacks behind the selected process or function, as a tree."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from perftop.model.samples import FunctionKey
from perftop.viewmodel import StackNode

Path = tuple[FunctionKey, ...]

# A branch unfolds by itself when it holds this share of the whole and this fraction of its
# parent: the path the time goes down, until it splits. (Every branch over 10% unfolded was a
# full pane of lines rewritten each second where the work splits evenly: 8 branches of ~12%
# under stackgen took the terminal traffic from 1.9 to 5.3 kB/s, over top's 3.4.)
EXPAND_SHARE = 10.0
EXPAND_OF_PARENT = 1 / 3
# The path element of the line that says how to get a frame's symbol back.
REMEDY_KEY = ("", "fix", False)


def node_label(node: StackNode) -> Text:
    if not node.path:
        return Text(node.symbol, style="bold")
    label = Text(no_wrap=True)
    label.append(f"{node.share:5.1f}% ", style="bold" if node.share >= EXPAND_SHARE else "")
    if node.mark:
        label.append(node.mark + " ", style="dim")
    unresolved = node.explanation is not None
    label.append(node.symbol, style="dim italic" if unresolved or not node.mark else "")
    if node.explanation is not None:
        label.append(f"  ← {node.explanation.reason}", style="yellow")
    if node.module:
        label.append(f"  {node.module}", style="dim")
    if node.self_share >= 0.05:
        label.append(f"  self {node.self_share:.1f}%", style="dim")
    return label


def remedy_label(remedy: str) -> Text:
    return Text.assemble(("fix: ", "bold yellow"), (remedy, "yellow"), no_wrap=True)


class StackTree(Tree[Path]):
    # Tree toggles a branch with space; here space pauses the screen like everywhere else, and
    # Enter folds and unfolds.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "app.toggle_pause", "Pause", show=False)
    ]

    def __init__(self, *, id: str = "stacks") -> None:
        super().__init__(Text("Call stacks"), data=(), id=id)
        self.border_title = "Call stacks"
        self.guide_depth = 2
        self.auto_expand = True
        self._subject: object = None
        # Folded branches are built when unfolded: the pane is rebuilt every interval, and
        # building every node of a big tree (thousands, most of them folded) was a fifth of
        # perftop's CPU. Path -> (its node, its model), and the unfold rule of this showing.
        self._unbuilt: dict[Path, tuple[TreeNode[Path], StackNode]] = {}
        self._unfold: set[Path] | None = None
        # Unfolded branches stay unfolded; a folded one unfolds once it is hot (the first
        # interval, a quarter second of samples, must not decide for the whole session),
        # unless the user folded it. Kept for the subject shown.
        self._folded_by_user: set[Path] = set()

    def show_stacks(self, model: StackNode | None, subject: object) -> None:
        """Show `model`; when `subject` is the one already shown, keep what the user unfolded,
        the cursor and the scroll position."""
        same = subject == self._subject
        self._subject = subject
        expanded = set(self._expanded_paths()) if same else None
        cursor_path = self.cursor_node.data if same and self.cursor_node is not None else ()
        scroll_y = self.scroll_y
        self.clear()
        self._unbuilt.clear()
        self._unfold = expanded
        if not same:
            self._folded_by_user.clear()
        if model is None:
            self.root.set_label(Text("Select a process or a function", style="dim"))
            return
        self.root.set_label(node_label(model))
        self._add_branch(self.root, model, expanded)
        self.root.expand()
        line = self._line_of(cursor_path or ())
        self.cursor_line = line if line is not None else 0
        if same:
            self.scroll_to(y=scroll_y, animate=False)
        else:
            self.scroll_home(animate=False)

    def _add_branch(
        self, parent: TreeNode[Path], model: StackNode, expanded: set[Path] | None
    ) -> None:
        for child in model.children:
            remedy = child.explanation.remedy if child.explanation is not None else None
            foldable = child.has_children or remedy is not None
            node = parent.add(node_label(child), data=child.path, allow_expand=foldable)
            if remedy is not None:
                # Its own line, first under the frame: too long to share the frame's line.
                node.add_leaf(remedy_label(remedy), data=(*child.path, REMEDY_KEY))
            hot = (
                child.share >= EXPAND_SHARE and child.share >= model.share * EXPAND_OF_PARENT
            ) or (remedy is not None and not child.has_children)
            if expanded is None:
                unfold = hot
            else:
                unfold = child.path in expanded or (hot and child.path not in self._folded_by_user)
            if child.has_children:
                if foldable and unfold:
                    self._add_branch(node, child, expanded)
                else:
                    self._unbuilt[child.path] = (node, child)
            if foldable and unfold:
                node.expand()

    @on(Tree.NodeCollapsed)
    def _remember_folded(self, event: Tree.NodeCollapsed[Path]) -> None:
        """Only the user folds a branch (perftop only unfolds)."""
        if event.node.data is not None:
            self._folded_by_user.add(event.node.data)

    @on(Tree.NodeExpanded)
    def _build_unfolded(self, event: Tree.NodeExpanded[Path]) -> None:
        """Add the children of a branch that was folded when shown (every way to unfold one,
        keys, clicks, Tree's shift+space, expands a node, which posts this)."""
        node = event.node
        if node.data is not None:
            self._folded_by_user.discard(node.data)
        unbuilt = self._unbuilt.pop(node.data, None) if node.data is not None else None
        if unbuilt is not None and unbuilt[0] is node:
            self._add_branch(node, unbuilt[1], self._unfold)

    def _walk(self, node: TreeNode[Path]) -> Iterator[TreeNode[Path]]:
        yield node
        for child in node.children:
            yield from self._walk(child)

    def _expanded_paths(self) -> Iterator[Path]:
        for node in self._walk(self.root):
            if node.is_expanded and node.data is not None:
                yield node.data

    def _line_of(self, path: Path) -> int | None:
        """The screen line of the node at `path`, if it is visible (its ancestors unfolded)."""
        line = 0 if self.show_root else -1
        for node in self._visible(self.root):
            if node.data == path:
                return max(line, 0)
            line += 1
        return None

    def _visible(self, node: TreeNode[Path]) -> Iterator[TreeNode[Path]]:
        yield node
        if node.is_expanded:
            for child in node.children:
                yield from self._visible(child)
