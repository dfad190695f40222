"""The annotate screen: one function's instructions (or Python lines) with each one's share of
the function's samples, live. Opened with `a` on a function or Enter on a leaf frame; Esc back.

The code is read off the UI thread (objdump, a source file) into a shared bounded cache; until
it arrives the sampled offsets alone are shown. Every text drawn comes from
perftop.viewmodel.annotate, already printable, and is drawn as Segments, never as markup.
"""

from __future__ import annotations

import contextlib
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Static

from perftop.annotate.cache import CodeCache
from perftop.model.annotate import CodeKind, OffsetHistogram
from perftop.model.samples import FunctionKey
from perftop.viewmodel.annotate import (
    AnnotatedLine,
    Annotation,
    annotate,
    bar,
    line_label,
)

BAR_WIDTH = 12
_HOT = Style(color="red", bold=True)
_WARM = Style(color="yellow")
_SOURCE = Style(color="cyan")
_DIM = Style(dim=True)


class AnnotateRequested(Message):
    """Annotate this function (from the functions pane or a leaf of the call-stack pane)."""

    def __init__(self, function: FunctionKey) -> None:
        super().__init__()
        self.function = function


class AnnotatePane(ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("tab,n", "next_hot", "Next hot", key_display="Tab"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"annotate--cursor"}
    DEFAULT_CSS = """
    AnnotatePane {
        height: 1fr;
        background: $surface;
        & > .annotate--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
    }
    """

    def __init__(self) -> None:
        super().__init__(id="annotate-lines")
        self.annotation: Annotation | None = None
        self.cursor = 0

    def show(self, annotation: Annotation) -> None:
        """Keep the cursor on the same offset across updates (lines come and go with code)."""
        before = self.annotation
        anchor = None
        if before is not None and before.lines and self.cursor < len(before.lines):
            anchor = before.lines[self.cursor].offset
        first_show = before is None or not before.lines
        self.annotation = annotation
        if anchor is not None:
            for index, line in enumerate(annotation.lines):
                if line.offset == anchor and not line.is_source:
                    self.cursor = index
                    break
        self.cursor = min(self.cursor, max(len(annotation.lines) - 1, 0))
        widest = max((len(line.text) + 40 for line in annotation.lines), default=0)
        self.virtual_size = Size(max(self.size.width, widest), len(annotation.lines))
        if first_show and annotation.hot_lines:
            self.cursor = annotation.hot_lines[0]
            # Once laid out (the pane has no height yet when the screen first shows it).
            self.call_after_refresh(self._center_cursor)
        self.refresh()

    def _center_cursor(self) -> None:
        top = max(self.cursor - self.size.height // 2, 0)
        self.scroll_to(y=top, animate=False, immediate=True)
        self.refresh()

    @property
    def current(self) -> AnnotatedLine | None:
        lines = self.annotation.lines if self.annotation is not None else ()
        return lines[self.cursor] if self.cursor < len(lines) else None

    def _move(self, line: int) -> None:
        count = len(self.annotation.lines) if self.annotation is not None else 0
        self.cursor = max(0, min(line, count - 1))
        top = int(self.scroll_offset.y)
        height = max(self.size.height, 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.CursorMoved())

    class CursorMoved(Message):
        pass

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_page_up(self) -> None:
        self._move(self.cursor - max(self.size.height - 1, 1))

    def action_page_down(self) -> None:
        self._move(self.cursor + max(self.size.height - 1, 1))

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self.annotation.lines) - 1 if self.annotation else 0)

    def action_next_hot(self) -> None:
        if self.annotation is not None:
            found = self.annotation.next_hot(self.cursor)
            if found is not None:
                self._move(found)

    def on_resize(self, event: events.Resize) -> None:
        lines = self.annotation.lines if self.annotation is not None else ()
        widest = max((len(line.text) + 40 for line in lines), default=0)
        self.virtual_size = Size(max(self.size.width, widest), len(lines))

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        index = scroll_y + y
        base = self.rich_style
        annotation = self.annotation
        if annotation is None or index >= len(annotation.lines):
            return Strip.blank(width, base)
        line = annotation.lines[index]
        cursor = self.get_component_rich_style("annotate--cursor") if index == self.cursor else None
        segments = self._segments(line, annotation.kind, base)
        if cursor is not None:
            segments = [Segment(text, (style or base) + cursor) for text, style, _ in segments]
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, base)

    @staticmethod
    def _segments(line: AnnotatedLine, kind: CodeKind, base: Style) -> list[Segment]:
        share = f"{line.percent:6.2f}% " if line.samples else " " * 8
        heat = _HOT if line.hottest else _WARM if line.percent >= 5 else None
        share_style = base + heat if heat is not None else base
        if line.is_source:
            return [
                Segment(share, share_style),
                Segment(" " * (BAR_WIDTH + 1), base),
                Segment(f"{line.source}  ", base + _SOURCE + _DIM),
                Segment(line.text, base + _SOURCE),
            ]
        jump = (line.jump or " ") + (">" if line.target else " ")
        return [
            Segment(share, share_style),
            Segment(bar(line.percent, BAR_WIDTH) + " ", share_style),
            Segment(f"{line_label(line, kind)}: ", base + _DIM),
            Segment(jump + " ", base + _WARM),
            Segment(line.text, base + heat if heat is not None else base),
        ]


class AnnotateScreen(Screen[None]):
    """Esc goes back to the tables."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", key_display="Esc"),
    ]
    DEFAULT_CSS = """
    AnnotateScreen #annotate-title { height: 1; background: $panel; }
    AnnotateScreen #annotate-status { height: auto; max-height: 3; color: $text-muted; }
    """

    def __init__(self, function: FunctionKey, cache: CodeCache) -> None:
        super().__init__()
        self.function = function
        self._cache = cache
        self.title_bar = Static(id="annotate-title", markup=False)
        self.status = Static(id="annotate-status", markup=False)
        self.pane = AnnotatePane()
        self._histogram: OffsetHistogram | None = None
        self._reading: object = None  # the cache key being read in the worker

    def compose(self) -> ComposeResult:
        yield self.title_bar
        yield self.status
        yield self.pane
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.pane.focus()
        self._draw()

    def action_back(self) -> None:
        self.dismiss(None)

    def show(self, histogram: OffsetHistogram | None) -> None:
        """The function's histogram in the view now (None: no leaf samples in it)."""
        self._histogram = histogram
        if self.is_mounted:
            self._draw()

    def _draw(self) -> None:
        histogram = self._histogram
        code = None
        if histogram is not None:
            offsets = frozenset(histogram.counts)
            code = self._cache.cached(histogram.site, offsets)
            key = CodeCache.key(histogram.site, offsets)
            if code is None and key != self._reading:  # one read at a time per function
                self._reading = key
                self._read_code(histogram)
        annotation = annotate(self.function, histogram, code)
        mark = {CodeKind.KERNEL: "[k]", CodeKind.PYTHON: "[py]"}.get(annotation.kind, "[.]")
        self.title_bar.update(
            Content(
                f" Annotate {mark} {annotation.symbol}  {annotation.module}  "
                f"{annotation.samples:.0f} samples"
            )
        )
        status = []
        if annotation.reason:
            status.append(annotation.reason)
        if annotation.note:
            status.append(annotation.note)
        if annotation.other_samples:
            status.append(
                f"{100 * annotation.other_samples / annotation.samples:.1f}% of the samples "
                "at offsets not placed (beyond the histogram's bound, or no address)"
            )
        self.status.update(Content(" " + "; ".join(status) if status else ""))
        self.status.display = bool(status)
        self.pane.show(annotation)

    @work(thread=True, exclusive=True, group="annotate-code", description="annotate: read code")
    def _read_code(self, histogram: OffsetHistogram) -> None:
        self._cache.code(histogram.site, frozenset(histogram.counts))
        with contextlib.suppress(RuntimeError):  # the app is leaving
            self.app.call_from_thread(self._code_arrived)

    def _code_arrived(self) -> None:
        if self.is_mounted:
            self._draw()
