"""The call-stack pane: the stacks behind the selected process or function, as a tree.

Drawn through Textual's Line API like `KeyedTable`, not with Textual's Tree: the pane is given
a new model every interval, and Tree was cleared and rebuilt each time, so every line of the
pane was laid out and rendered again (`Tree.render_lines` alone was ~7% of perftop's samples on
a busy box, issue 15). Here a refresh computes the visible lines (the unfolded branches only),
compares them with the lines shown, and asks Textual to redraw only the lines that differ; a
line is drawn from plain strings and styles (never markup) and its Strip kept for the next
time it is asked for.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.strip import Strip

from perftop.model.samples import FunctionKey
from perftop.ui.widgets.annotate_view import AnnotateRequested
from perftop.ui.widgets.frame_style import mark_style
from perftop.ui.widgets.scrolling import TitledScrollView, set_virtual_size
from perftop.viewmodel import StackNode
from perftop.viewmodel.stacks import RUN_KEY

Path = tuple[FunctionKey, ...]

# A branch unfolds by itself when it holds this share of the whole and this fraction of its
# parent: the path the time goes down, until it splits. (Every branch over 10% unfolded was a
# full pane of lines rewritten each second where the work splits evenly: 8 branches of ~12%
# under stackgen took the terminal traffic from 1.9 to 5.3 kB/s, over top's 3.4.)
EXPAND_SHARE = 10.0
EXPAND_OF_PARENT = 1 / 3
# The path element of the line that says how to get a frame's symbol back.
REMEDY_KEY = ("", "fix", False)

# Two columns a level, as the Tree this replaced drew with guide_depth=2.
LEVEL_WIDTH = 2
# The indentation never takes more than this share of the pane, nor leaves less than
# LABEL_ROOM columns for the label (but always allows MIN_INDENT), nor more than MAX_LEVELS
# levels: a 23-frame chain indented 46 columns and pushed the leaf's symbol out of an
# 80-column pane (issue 19), and 20 levels of guides at 80 columns still left a C++ symbol
# half its room. Deeper lines show `⋯N`, the N top levels left out, then the guides of the
# levels below them.
INDENT_SHARE = 0.5
LABEL_ROOM = 40
MIN_INDENT = 12
MAX_LEVELS = 8
HIDDEN_MARK_WIDTH = 4  # "⋯N" padded, so lines deeper than the cap stay aligned
FOLDED_ICON = "▶ "
UNFOLDED_ICON = "▼ "
# A chain collapsed into one line (its frames hidden, what they call shown below it): not
# FOLDED_ICON, which says that nothing below the line is shown. Unfolded, it is UNFOLDED_ICON.
RUN_ICON = "▷ "

NO_STYLE = Style()
BOLD = Style(bold=True)
DIM = Style(dim=True)
DIM_ITALIC = Style(dim=True, italic=True)
WARNING = Style(color="yellow")
BOLD_WARNING = Style(color="yellow", bold=True)

Part = tuple[str, Style]  # a run of literal text (already printable) and its style


def node_parts(node: StackNode) -> tuple[Part, ...]:
    """The label of one frame: share, its kind's mark ([k], [.], [py]), symbol, why it has no
    symbol, module, self."""
    if not node.path:
        return ((node.symbol, BOLD),)
    parts: list[Part] = [(f"{node.share:5.1f}% ", BOLD if node.share >= EXPAND_SHARE else NO_STYLE)]
    if node.kind is not None:
        parts.append((node.mark + " ", mark_style(node.kind)))
    unresolved = node.explanation is not None
    plain = bool(node.mark) or node.run_length > 0  # a frame, or a run of frames: not a folded line
    parts.append((node.symbol, DIM_ITALIC if unresolved or not plain else NO_STYLE))
    if node.explanation is not None:
        parts.append((f"  ← {node.explanation.reason}", WARNING))
    if node.module:
        parts.append((f"  {node.module}", DIM))
    if node.self_share >= 0.05:
        parts.append((f"  self {node.self_share:.1f}%", DIM))
    return tuple(parts)


def remedy_parts(remedy: str) -> tuple[Part, ...]:
    return (("fix: ", BOLD_WARNING), (remedy, WARNING))


def levels_that_fit(width: int) -> int:
    """How many levels of indentation a pane `width` columns wide draws in full."""
    indent = max(MIN_INDENT, min(int(width * INDENT_SHARE), width - LABEL_ROOM))
    return max(HIDDEN_MARK_WIDTH // LEVEL_WIDTH + 1, min(MAX_LEVELS, indent // LEVEL_WIDTH))


@dataclass(frozen=True, slots=True)
class PaneLine:
    """One line of the pane as it is drawn; two equal lines draw the same cells."""

    path: Path
    # For each level above the line's own, whether a guide continues down through it (that
    # ancestor has a later sibling); then the line's own connector. Empty for the root.
    guides: tuple[bool, ...]
    last: bool  # the last child of its parent: "└" rather than "├"
    icon: str  # FOLDED_ICON, UNFOLDED_ICON, RUN_ICON, or "" for a line that does not fold
    # No StackNode here: lines are keys of the Strip cache, which must not keep old models alive.
    parts: tuple[Part, ...]
    # A frame, which Enter on a leaf annotates; not a `fix:` line, a `… n more` line, a run.
    annotates: bool = False

    @property
    def is_run(self) -> bool:
        return bool(self.path) and self.path[-1] == RUN_KEY

    @property
    def depth(self) -> int:
        return len(self.guides) + 1 if self.path else 0

    def indent(self, levels: int) -> str:
        """The guides before the label, at most `levels` levels wide."""
        if not self.path:
            return ""
        drawn = ["│ " if through else "  " for through in self.guides]
        drawn.append("└ " if self.last else "├ ")
        if len(drawn) <= levels:
            return "".join(drawn)
        # The top levels are left out in steps of half the room, not one a line: lines whose
        # ancestors are left out alike keep their guides straight under each other.
        room = levels - HIDDEN_MARK_WIDTH // LEVEL_WIDTH
        step = max(1, room // 2)
        hidden = -(-(len(drawn) - room) // step) * step
        return f"⋯{hidden}".ljust(HIDDEN_MARK_WIDTH) + "".join(drawn[hidden:])

    def cell_width(self, levels: int) -> int:
        return (
            cell_len(self.indent(levels))
            + cell_len(self.icon)
            + sum(cell_len(text) for text, _ in self.parts)
        )


PLACEHOLDER = PaneLine((), (), True, "", (("Select a process or a function", DIM),))


class StackTree(TitledScrollView, can_focus=True):
    """Enter folds and unfolds; left folds or goes to the parent, right unfolds or goes to the
    first child; on a run (a chain of single calls on one line) they show and hide its
    frames; space pauses the screen like everywhere else."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "app.toggle_pause", "Pause", show=False),
        # The app's key, shown in the footer where it matters (the tables' footer is full).
        Binding("i", "app.toggle_callers", "Callers"),
        Binding("enter", "toggle_fold", "Fold/unfold", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First line", show=False),
        Binding("end,ctrl+end", "last", "Last line", show=False),
        Binding("left", "fold_or_parent", "Fold or go to the parent", show=False),
        Binding("right", "unfold_or_child", "Unfold or go to the first child", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {"stack-tree--cursor", "stack-tree--guides"}

    DEFAULT_CSS = """
    StackTree {
        background: $surface;
        color: $foreground;
        & > .stack-tree--guides {
            color: $surface-lighten-2;
        }
        & > .stack-tree--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .stack-tree--guides {
                color: $surface-lighten-3;
            }
            & > .stack-tree--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """

    def __init__(self, *, id: str = "stacks") -> None:
        super().__init__(id=id)
        self.set_pane_title("Call stacks")
        self._subject: object = None
        self._model: StackNode | None = None
        self._lines: tuple[PaneLine, ...] = (PLACEHOLDER,)
        self._index: dict[Path, int] = {(): 0}
        self._parents: tuple[int, ...] = (0,)  # the line each line hangs under (Left goes there)
        self._cursor = 0
        # Unfolded branches stay unfolded; a folded one unfolds once it is hot (the first
        # interval, a quarter second of samples, must not decide for the whole session),
        # unless the user folded it. Kept for the subject shown, by path.
        self._unfolded: set[Path] = set()
        self._folded_by_user: set[Path] = set()
        # The runs the user unfolded into their frames (a run never unfolds by itself).
        self._runs_unfolded: set[Path] = set()
        # The Strips drawn, by what they show: a line that comes back (scrolled to again, the
        # pane repainted after a resize or a title change) is not drawn again.
        self._strips: dict[Hashable, Strip] = {}
        self.strips_drawn = 0  # lines drawn since the widget was made (tests count them)
        self._widest = 0  # the widest line shown for this subject at this pane width

    # What is shown

    @property
    def model(self) -> StackNode | None:
        return self._model

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def cursor_line(self) -> int:
        return self._cursor

    @cursor_line.setter
    def cursor_line(self, line: int) -> None:
        self._move(line)

    @property
    def cursor_path(self) -> Path | None:
        """The path of the frame under the cursor (None when nothing is shown)."""
        return self._lines[self._cursor].path if self._model is not None else None

    def show_stacks(self, model: StackNode | None, subject: object) -> None:
        """Show `model`; when `subject` is the one already shown, keep what the user unfolded,
        the cursor (by path) and the scroll position."""
        same = subject == self._subject
        self._subject = subject
        cursor_path = self._lines[self._cursor].path if same else ()
        if not same:
            self._unfolded.clear()
            self._folded_by_user.clear()
            self._runs_unfolded.clear()
            self._widest = 0
        self._model = model
        self._relayout(cursor_path)
        if not same:
            self.scroll_home(animate=False, immediate=True)

    def _relayout(self, cursor_path: Path) -> None:
        """Recompute the visible lines, put the cursor on `cursor_path` (or its nearest shown
        ancestor), and redraw the lines on screen that changed."""
        before, old_cursor = self._lines, self._cursor
        self._lines, self._parents = (
            self._visible_lines() if self._model is not None else ((PLACEHOLDER,), (0,))
        )
        self._index = {line.path: index for index, line in enumerate(self._lines)}
        if len(self._strips) > 8 * len(self._lines) + 256:
            self._strips.clear()  # lines long gone; the ones still shown are cheap to redraw
        self._update_virtual_size()
        path = cursor_path
        while path and path not in self._index:
            path = path[:-1]
        self._cursor = self._index.get(path, 0)
        self._refresh_changed(before, old_cursor)
        self._scroll_to_cursor()

    def _visible_lines(self) -> tuple[tuple[PaneLine, ...], tuple[int, ...]]:
        """The lines shown, and for each the index of the line it hangs under."""
        assert self._model is not None
        root = self._model
        lines = [PaneLine((), (), True, UNFOLDED_ICON, node_parts(root))]
        parents = [0]
        self._add_branch_lines(lines, parents, 0, root, root.children, (), set(), 0)
        return tuple(lines), tuple(parents)

    def _add_branch_lines(
        self,
        lines: list[PaneLine],
        parents: list[int],
        parent_line: int,
        parent: StackNode,
        children: tuple[StackNode, ...],
        guides: tuple[bool, ...],
        remedies_shown: set[str],
        run_end: int,
    ) -> None:
        """The lines of `children` (under `parent`) and of their unfolded branches. Only an
        unfolded branch's children are asked for: the view model converts them on demand, and
        building every node of a big tree (thousands, most of them folded) was a fifth of
        perftop's CPU. A node whose path is at most `run_end` long is a frame of a run the
        user unfolded: it shows its callee unless the user folds it."""
        for position, child in enumerate(children):
            last = position == len(children) - 1
            below = (*guides, not last)
            if child.run_length:
                # The leaf of a deep chain stays in view: the run's frames are one line,
                # what they call is below it; unfolded, the frames are below it instead.
                run_unfolded = child.path in self._runs_unfolded
                icon = UNFOLDED_ICON if run_unfolded else RUN_ICON
                index = len(lines)
                lines.append(PaneLine(child.path, guides, last, icon, node_parts(child)))
                parents.append(parent_line)
                shown = child.hidden_frames[:1] if run_unfolded else child.children
                # Its frames' paths: its parent's and one more key each, up to its length.
                end = len(child.path) - 2 + child.run_length if run_unfolded else run_end
                self._add_branch_lines(
                    lines, parents, index, child, shown, below, remedies_shown, end
                )
                continue
            remedy = child.explanation.remedy if child.explanation is not None else None
            if remedy in remedies_shown:
                # Once per module and reason: the same advice under every unsymbolized frame
                # of one library filled the pane (the frame still says why, `← reason`).
                remedy = None
            foldable = child.has_children or remedy is not None
            if foldable:
                hot = (
                    (child.share >= EXPAND_SHARE and child.share >= parent.share * EXPAND_OF_PARENT)
                    or (remedy is not None and not child.has_children)
                    or len(child.path) <= run_end
                )
                if hot and child.path not in self._folded_by_user:
                    self._unfolded.add(child.path)
            unfolded = foldable and child.path in self._unfolded
            icon = (UNFOLDED_ICON if unfolded else FOLDED_ICON) if foldable else ""
            index = len(lines)
            lines.append(
                PaneLine(
                    child.path,
                    guides,
                    last,
                    icon,
                    node_parts(child),
                    annotates=child.kind is not None,
                )
            )
            parents.append(parent_line)
            if not unfolded:
                continue
            if remedy is not None:
                remedies_shown.add(remedy)
                # Its own line, first under the frame: too long to share the frame's line.
                lines.append(
                    PaneLine(
                        (*child.path, REMEDY_KEY),
                        below,
                        not child.has_children,
                        "",
                        remedy_parts(remedy),
                    )
                )
                parents.append(index)
            if child.has_children:
                self._add_branch_lines(
                    lines, parents, index, child, child.children, below, remedies_shown, run_end
                )

    def _update_virtual_size(self) -> None:
        """The widest line sets the scrollable width, which never shrinks while the subject
        and the pane's width stay: any change of the virtual size lays the screen out and
        redraws the whole pane, and shares and `self x%` change the widths every interval."""
        levels = levels_that_fit(self.size.width)
        widest = max(line.cell_width(levels) for line in self._lines)
        self._widest = max(self._widest, widest)
        set_virtual_size(self, Size(self._widest, len(self._lines)))

    def _refresh_changed(self, before: tuple[PaneLine, ...], old_cursor: int) -> None:
        """Ask for the lines on screen that now show something else, and no others."""
        top = int(self.scroll_offset.y)
        bottom = top + self.size.height
        changed = [
            y
            for y in range(top, min(bottom, max(len(before), len(self._lines))))
            if y >= len(before) or y >= len(self._lines) or before[y] != self._lines[y]
        ]
        if old_cursor != self._cursor:
            changed += [old_cursor, self._cursor]
        for y in changed:
            if top <= y < bottom:
                self.refresh_line(y)

    # Drawing

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        index = scroll_y + y
        base = self.line_style
        if index >= len(self._lines):
            return Strip.blank(width, base)
        line = self._lines[index]
        cursor = index == self._cursor
        levels = levels_that_fit(width)
        # Kept cropped to the pane: a whole-pane repaint (a layout, a scroll) of unchanged
        # lines is then a dictionary look-up a line.
        key = (line, levels, cursor, self.has_focus, base, scroll_x, width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._draw(line, levels, cursor, base)
            strip = self._strips[key] = strip.crop_extend(scroll_x, scroll_x + width, base)
        return strip

    def _draw(self, line: PaneLine, levels: int, cursor: bool, base: Style) -> Strip:
        """The guides in their own colour, then the icon and label; the cursor covers the
        icon and label only, as Tree's did."""
        self.strips_drawn += 1
        guides = base + self.get_component_rich_style("stack-tree--guides")
        segments = [Segment(line.indent(levels), guides)]
        if cursor:
            base = base + self.get_component_rich_style("stack-tree--cursor")
        if line.icon:
            segments.append(Segment(line.icon, base))
        segments += [Segment(text, base + style) for text, style in line.parts]
        return Strip(segments)

    def on_resize(self, event: events.Resize) -> None:
        self._widest = 0
        self._update_virtual_size()
        self._scroll_to_cursor()

    def on_focus(self, event: events.Focus) -> None:
        self.refresh_line(self._cursor)

    def on_blur(self, event: events.Blur) -> None:
        self.refresh_line(self._cursor)

    # Moving

    def _move(self, line: int) -> None:
        line = max(0, min(line, len(self._lines) - 1))
        if line != self._cursor:
            old, self._cursor = self._cursor, line
            self.refresh_line(old)
            self.refresh_line(line)
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_offset.y)
        visible = max(1, self.size.height)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True)

    def _page(self) -> int:
        return max(1, self.size.height - 1)

    def action_cursor_up(self) -> None:
        self._move(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self._cursor + 1)

    def action_page_up(self) -> None:
        self._move(self._cursor - self._page())

    def action_page_down(self) -> None:
        self._move(self._cursor + self._page())

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self._lines) - 1)

    # Folding (only the user folds a branch; perftop only unfolds)

    def _set_folded(self, line: PaneLine, folded: bool) -> None:
        if line.is_run:
            (self._runs_unfolded.discard if folded else self._runs_unfolded.add)(line.path)
        elif folded:
            self._unfolded.discard(line.path)
            self._folded_by_user.add(line.path)
        else:
            self._unfolded.add(line.path)
            self._folded_by_user.discard(line.path)
        self._relayout(line.path)

    def action_toggle_fold(self) -> None:
        line = self._lines[self._cursor]
        if line.icon and line.path:  # the root stays unfolded: it is the whole
            self._set_folded(line, line.icon == UNFOLDED_ICON)
        elif line.annotates and self._model is not None:  # a leaf: where in it the time went
            self.post_message(AnnotateRequested(line.path[-1]))

    def action_fold_or_parent(self) -> None:
        line = self._lines[self._cursor]
        if line.icon == UNFOLDED_ICON and line.path:
            self._set_folded(line, True)
        elif line.path:
            # The line it hangs under, which a path cannot say: below a run, the parent's
            # path is a frame of the run, not shown.
            self._move(self._parents[self._cursor])

    def action_unfold_or_child(self) -> None:
        line = self._lines[self._cursor]
        if line.icon in (FOLDED_ICON, RUN_ICON):
            self._set_folded(line, False)
        elif line.icon == UNFOLDED_ICON:
            self._move(self._cursor + 1)  # the first child is the next line

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        line = int(self.scroll_offset.y) + offset.y
        if line < len(self._lines):
            self._move(line)
            if self._lines[line].icon:  # a click folds; annotate is Enter's, on a leaf
                self.action_toggle_fold()
