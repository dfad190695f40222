"""A scrollable size that changes without laying the screen out again.

`Widget.virtual_size` is a reactive with layout=True: every change reflows the whole screen, and
the compositor then marks every line of the widget dirty, because its geometry (which holds the
virtual size) changed. The tables' row count and the call-stack pane's line count change nearly
every interval, so each interval drew every line of those panes again through Textual's styles
cache, and laid out the screen, for lines that had not changed. A ScrollView keeps its own
virtual size across layouts (ScrollView._size_updated ignores the compositor's), so it can be set
as Textual itself does on a scroll: the value without its watcher, then the scrollbars. When the
scrollbars appear or go, their own reactives still lay the screen out, as they must.
"""

from __future__ import annotations

from rich.style import Style
from textual.content import Content
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget


def set_virtual_size(widget: ScrollView, size: Size) -> None:
    """Give `widget` a new scrollable size; only its scrollbars are redrawn."""
    if size == widget.virtual_size:
        return
    if not widget.size.area or not widget.virtual_size.area:
        # Not laid out yet, or empty until now: the first layout with content is needed.
        widget.virtual_size = size
        return
    widget.set_reactive(Widget.virtual_size, size)
    widget._scroll_update(size)  # as Widget._size_updated(layout=False) does


class TitledScrollView(ScrollView):
    """A pane with no scrollbar, whose border title says how far it is scrolled.

    perftop's live panes have no scrollbars (perftop.tcss): a scrollbar that comes and goes as
    the row count crosses the pane's height lays the whole screen out again, and the compositor
    then draws every line of every pane, each second on a busy box. Without one, the title says
    what a scrollbar said: `Functions ↑12 above` once the user has scrolled down.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._pane_title = ""
        self._shown_title: str | None = None
        self._pass_style: Style | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        # Every line of one pass has the same base style, and Widget.rich_style walks the DOM
        # for it each time it is asked (20 µs here: most of what drawing a cached line costs).
        self._pass_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._pass_style = None

    @property
    def line_style(self) -> Style:
        """The widget's base style, read once per drawing pass."""
        return self.rich_style if self._pass_style is None else self._pass_style

    def set_pane_title(self, title: str) -> None:
        """The pane's own title (literal text, never markup); the scroll mark is added to it."""
        self._pane_title = title
        self._show_title()

    @property
    def lines_above(self) -> int:
        """How many of the pane's lines are scrolled off its top."""
        return max(0, round(self.scroll_y))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._show_title()

    def _show_title(self) -> None:
        above = self.lines_above
        title = self._pane_title if not above else f"{self._pane_title} ↑{above} above"
        # Setting a border title repaints every line of the pane, even to the same text.
        if title != self._shown_title:
            self._shown_title = title
            self.border_title = Content(title)
