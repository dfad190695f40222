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

from textual.geometry import Size
from textual.scroll_view import ScrollView
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
