"""The `f` screen: a live flame graph (icicle) of the current view, drawn in terminal cells.

The top row holds one box per process, under it each process's outermost frames, and so on down
to the leaves; a box is as wide as its share of samples and the hottest sibling is leftmost. The
layout is `perftop.profile.flame`'s; this module picks colours, draws rows and moves the selection.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Static

from perftop.model.samples import Frame, FunctionKey, Interval, StackSample
from perftop.model.stats import View
from perftop.profile.aggregate import PROCESS_MODULE, CallNode
from perftop.profile.flame import (
    FlameBox,
    SiblingOrder,
    flame_root,
    label,
    layout,
    stacks_under,
    subtree,
    zoom,
)
from perftop.sanitize import printable
from perftop.ui.widgets.frame_style import mark_style
from perftop.ui.widgets.header import HeaderBar
from perftop.viewmodel import ViewOptions, explain_unresolved, module_text

Path = tuple[FunctionKey, ...]

# Deeper rows are reached by scrolling; past this the boxes are one cell wide anyway.
MAX_DEPTH = 256

# Colours from the xterm 256-colour cube, so they look the same without truecolor and degrade
# to neighbours on a 16-colour terminal. Each pair is two shades of one hue: a module keeps its
# hue, and neighbouring frames of one module alternate shades so they stay apart.
USER_PALETTE: tuple[tuple[int, int], ...] = (
    (222, 221),  # gold
    (215, 209),  # orange
    (186, 185),  # khaki
    (180, 174),  # tan
    (150, 149),  # green
    (223, 217),  # peach
    (228, 227),  # yellow
    (179, 173),  # ochre
)
KERNEL_COLOURS = (117, 110)  # blue: the kernel is one module, its own hue
# Python functions: cool greens, away from the native palette's warm hues and the kernel's
# blue, so the Python part of a stack reads as one band; a file keeps its shade pair.
PYTHON_PALETTE: tuple[tuple[int, int], ...] = (
    (157, 121),  # mint
    (158, 122),  # aquamarine
    (151, 115),  # sage
)
PROCESS_COLOURS = (189, 183)  # lavender
UNRESOLVED_COLOURS = (250, 247)  # grey: no symbol
TEXT_COLOUR = 16  # black on every light box
SELECTED_BACKGROUND = 90  # dark magenta: no frame has that colour


def stable_hash(text: str) -> int:
    """Python's hash() of a str changes with each run; a module's colour must not."""
    return zlib.crc32(text.encode("utf-8", "replace"))


def box_colour(frame: Frame) -> int:
    """The background colour index of a frame's box."""
    if frame.module == PROCESS_MODULE:
        pair = PROCESS_COLOURS
    elif frame.kernel:
        pair = KERNEL_COLOURS
    elif frame.python is not None:
        pair = PYTHON_PALETTE[stable_hash(frame.module) % len(PYTHON_PALETTE)]
    elif not frame.resolved:
        pair = UNRESOLVED_COLOURS
    else:
        pair = USER_PALETTE[stable_hash(frame.module) % len(USER_PALETTE)]
    return pair[stable_hash(frame.symbol) & 1]


def box_name(frame: Frame) -> str:
    return printable(frame.symbol)


def row_strip(
    boxes: Sequence[FlameBox], width: int, selected: FlameBox | None, base: Style
) -> Strip:
    """One row of boxes as terminal cells: each box's name on its colour, cut to fit, and one
    cell of the plain background after it so that neighbours of one colour stay apart."""
    segments: list[Segment] = []
    cursor = 0
    for box in boxes:
        if box.x > cursor:
            segments.append(Segment(" " * (box.x - cursor), base))
        colour = box_colour(box.frame)
        if box is selected:
            style = Style(color="color(231)", bgcolor=f"color({SELECTED_BACKGROUND})", bold=True)
        else:
            dim = box.frame.module != PROCESS_MODULE and not box.frame.resolved
            style = Style(
                color=f"color({TEXT_COLOUR})",
                bgcolor=f"color({colour})",
                bold=box.frame.module == PROCESS_MODULE,
                italic=dim,
            )
        inside = box.width - 1 if box.width >= 2 else box.width
        text = label(box_name(box.frame), inside) if inside >= 3 else ""
        segments.append(Segment(text.ljust(inside), style))
        if inside < box.width:
            segments.append(Segment(" ", base))
        cursor = box.x + box.width
    if cursor < width:
        segments.append(Segment(" " * (width - cursor), base))
    return Strip(segments, max(width, cursor)).crop(0, width)


@dataclass(frozen=True, slots=True)
class Selection:
    """What the detail line says about the selected box."""

    frame: Frame
    samples: int
    share_of_view: float  # percent of every sample in the view
    share_of_zoom: float | None  # percent of the zoomed frame, when zoomed


def detail_text(selection: Selection | None, message: str = "") -> Text:
    """The selected frame in full (the box may show only its first letters)."""
    if selection is None:
        return Text(message or "no samples in this view", style="dim")
    frame = selection.frame
    text = Text()
    if frame.module == PROCESS_MODULE:
        text.append("process ", style="dim")
        text.append(printable(frame.symbol), style="bold")
    else:
        text.append(frame.kind.mark + " ", style=mark_style(frame.kind))
        text.append(printable(frame.symbol), style="bold")
        text.append("  in ", style="dim")
        text.append(module_text(frame.module, frame.python is not None, 80))
    text.append(f"  {selection.samples:,} samples", style="")
    text.append(f"  {selection.share_of_view:.1f}% of the view")
    if selection.share_of_zoom is not None:
        text.append(f", {selection.share_of_zoom:.1f}% of the zoom", style="dim")
    explanation = explain_unresolved(frame)
    if explanation is not None:
        text.append(f"  ← {explanation.text}", style="yellow")
    return text


class FlameGraph(ScrollView, can_focus=True):
    """The boxes, one row per call depth; scrolls down when the stacks are deeper than the
    screen. The selection is a path of function keys, so it stays on its frame across
    refreshes and goes to the nearest ancestor when its frame leaves the view."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Prev", show=False),
        Binding("right", "move(1)", "Next", show=False),
        Binding("up", "parent", "Caller", show=False),
        Binding("down", "child", "Callee", show=False),
        Binding("enter", "zoom_in", "Zoom", key_display="Enter"),
        Binding("home", "first", "First", show=False),
    ]

    class SelectionChanged(Message):
        def __init__(self, graph: FlameGraph) -> None:
            super().__init__()
            self.graph = graph

    def __init__(self, *, id: str = "flame") -> None:
        super().__init__(id=id)
        self._root = CallNode(frame=None)
        self._zooms: list[Path] = []  # absolute paths zoomed into, innermost last
        self._order = SiblingOrder()  # siblings keep their places between refreshes
        self._selected: Path = ()
        self._rows: list[list[FlameBox]] = []
        self._layout_width = -1
        self._message = ""

    # Data in ---------------------------------------------------------------------------------

    def show_tree(self, root: CallNode) -> None:
        self._root = root
        self._relayout()

    @property
    def zoom_path(self) -> Path:
        return self._zooms[-1] if self._zooms else ()

    @property
    def zoomed(self) -> bool:
        return bool(self._zooms)

    def zoom_names(self) -> list[str]:
        """The frames zoomed into, outermost first, as printable names."""
        names = []
        node = self._root
        for key in self.zoom_path:
            child = node.children.get(key)
            if child is None or child.frame is None:
                break
            names.append(box_name(child.frame))
            node = child
        return names

    # Layout ----------------------------------------------------------------------------------

    @property
    def _prefix(self) -> Path:
        """Box paths are relative to the zoomed frame's parent; this makes them absolute."""
        return self.zoom_path[:-1]

    def _relayout(self) -> None:
        width = self.scrollable_content_region.width
        self._layout_width = width
        self._message = ""
        shown = self._root
        if self._zooms:
            if subtree(self._root, self.zoom_path) is None:
                shown = CallNode(frame=None)
                self._message = "the zoomed frame has no samples now; Esc zooms out"
            else:
                shown = zoom(self._root, self.zoom_path)
        rows: list[list[FlameBox]] = []
        for box in layout(shown, width, max_depth=MAX_DEPTH, order=self._order):
            while len(rows) <= box.depth:
                rows.append([])
            rows[box.depth].append(box)
        self._rows = rows
        self.virtual_size = Size(width, len(rows))
        self._keep_selection()
        self.refresh()

    def _keep_selection(self) -> None:
        """Stay on the selected path, or the nearest ancestor of it still drawn."""
        path = self._selected
        while path and self._box_at(path) is None:
            path = path[:-1]
        if self._box_at(path) is None:
            first = self._rows[0][0] if self._rows else None
            path = self._prefix + first.path if first is not None else ()
        self._select(path, announce=path != self._selected)

    def _box_at(self, path: Path) -> FlameBox | None:
        prefix = self._prefix
        if not path or path[: len(prefix)] != prefix:
            return None
        relative = path[len(prefix) :]
        depth = len(relative) - 1
        if depth < 0 or depth >= len(self._rows):
            return None
        return next((box for box in self._rows[depth] if box.path == relative), None)

    @property
    def selected_box(self) -> FlameBox | None:
        return self._box_at(self._selected)

    def selection(self) -> Selection | None:
        box = self.selected_box
        if box is None:
            return None
        whole = self._root.samples
        zoomed = subtree(self._root, self.zoom_path) if self._zooms else None
        return Selection(
            frame=box.frame,
            samples=box.samples,
            share_of_view=100.0 * box.samples / whole if whole else 0.0,
            share_of_zoom=(
                100.0 * box.samples / zoomed.samples
                if zoomed is not None and zoomed.samples
                else None
            ),
        )

    @property
    def message(self) -> str:
        return self._message

    def _select(self, path: Path, announce: bool = True) -> None:
        self._selected = path
        box = self._box_at(path)
        if box is not None:
            self.scroll_to_region(Region(0, box.depth, 1, 1), animate=False, x_axis=False)
        self.refresh()
        if announce:
            self.post_message(self.SelectionChanged(self))

    # Drawing ---------------------------------------------------------------------------------

    def on_resize(self) -> None:
        if self.scrollable_content_region.width != self._layout_width:
            self._relayout()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = y + round(self.scroll_offset.y)
        base = self.rich_style
        if row >= len(self._rows):
            if row == 0:
                note = self._message or "no samples in this view"
                return Strip([Segment(label(note, width).ljust(width), base + Style(dim=True))])
            return Strip.blank(width, base)
        return row_strip(self._rows[row], width, self.selected_box, base)

    # Moving ----------------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        box = self.selected_box
        if box is None:
            return
        row = self._rows[box.depth]
        index = row.index(box) + step
        if 0 <= index < len(row):
            self._select(self._prefix + row[index].path)

    def action_parent(self) -> None:
        box = self.selected_box
        if box is not None and box.depth > 0:
            self._select(self._selected[:-1])

    def action_child(self) -> None:
        box = self.selected_box
        if box is None or box.depth + 1 >= len(self._rows):
            return
        children = [b for b in self._rows[box.depth + 1] if b.path[:-1] == box.path]
        if children:  # the hottest: children are laid out hottest first
            self._select(self._prefix + children[0].path)

    def action_first(self) -> None:
        if self._rows:
            self._select(self._prefix + self._rows[0][0].path)

    def on_click(self, event: events.Click) -> None:
        """A click selects the box under it; a double click zooms into it, like Enter."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = offset.y + round(self.scroll_offset.y)
        if row >= len(self._rows):
            return
        for box in self._rows[row]:
            if box.x <= offset.x < box.x + box.width:
                self._select(self._prefix + box.path)
                if event.chain == 2:
                    self.action_zoom_in()
                return

    def action_zoom_in(self) -> None:
        box = self.selected_box
        if box is None or (self._zooms and self._selected == self.zoom_path):
            return
        self._zooms.append(self._selected)
        self._relayout()
        self.post_message(self.SelectionChanged(self))

    def zoom_out(self) -> bool:
        """Back to the previous zoom, the frame zoomed into still selected; False when there was
        no zoom to leave."""
        if not self._zooms:
            return False
        left = self._zooms.pop()
        self._selected = left
        self._relayout()
        self.post_message(self.SelectionChanged(self))
        return True


class FlameScreen(Screen[None]):
    """The flame graph of what the tables show: all processes or the zoomed one, after the PID
    and text filters, the last interval or the accumulation. Esc zooms out one level, and at
    the top goes back to the tables (as `f` does)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Out", key_display="Esc"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.header_bar = HeaderBar(id="flame-header")
        self.graph = FlameGraph()
        self.detail = Static(id="flame-detail", markup=False)
        self._subject = ""
        self._header: tuple[Interval | None, ViewOptions, bool, bool, str] | None = None
        self._tree: CallNode | None = None

    def compose(self) -> ComposeResult:
        yield self.header_bar
        yield self.graph
        yield self.detail
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.graph.focus()
        self._draw()

    def show(
        self,
        view: View | None,
        latest: Interval | None,
        options: ViewOptions,
        *,
        live: bool,
        ended: bool,
        subject: str,
        zoom_comm: str,
    ) -> None:
        """Draw `view` (the stacks the tables show); `latest` feeds the header. Kept until the
        screen is mounted when it is not yet."""
        self._header = (latest, options, live, ended, zoom_comm)
        self._subject = subject
        if view is not None:
            names = {process.pid: process.comm for process in view.processes}
            self._tree = flame_root(view.stacks, names)
        if self.is_mounted:
            self._draw()

    def zoomed_stacks(self, view: View) -> list[StackSample]:
        """The stacks of `view` through the frame zoomed into (all of them unzoomed)."""
        names = {process.pid: process.comm for process in view.processes}
        return stacks_under(view.stacks, self.graph.zoom_path, names)

    def _draw(self) -> None:
        if self._header is not None:
            latest, options, live, ended, zoom_comm = self._header
            self.header_bar.show(latest, options, live=live, ended=ended, zoom_comm=zoom_comm)
        if self._tree is not None:
            self.graph.show_tree(self._tree)
        self._show_title()
        self._show_detail()

    def _show_title(self) -> None:
        title = f"Flame graph: {self._subject}"
        trail = [label(name, 24) for name in self.graph.zoom_names()]
        if len(trail) > 3:  # the process, then the innermost frames
            trail = [trail[0], "…", *trail[-2:]]
        if trail:
            title += " › " + " › ".join(trail)
        # Content, not str: a str title is parsed as markup, and names come from processes.
        self.graph.border_title = Content(title)

    def _show_detail(self) -> None:
        self.detail.update(detail_text(self.graph.selection(), self.graph.message))

    @on(FlameGraph.SelectionChanged)
    def _selection_changed(self) -> None:
        self._show_title()
        self._show_detail()

    def action_back(self) -> None:
        if not self.graph.zoom_out():
            self.dismiss(None)
