"""A table refreshed by row key, so the selection and the scroll position survive updates.

It replaces Textual's DataTable, which at every update invalidated the render cache of every
row and removed rows in linear time: with fork churn (a hundred rows come and go each second)
that was a third of perftop's own CPU. Here an update stores the new rows, and only the lines
on screen whose text changed are drawn again; a line is one string in one style, built only when
it is on screen (Textual's Line API).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from perftop.ui.widgets.scrolling import TitledScrollView, set_virtual_size
from perftop.viewmodel import Column, TableRow
from perftop.viewmodel.layout import fit_widths

CELL_PADDING = 1  # a space each side of a cell, as DataTable drew it
ELLIPSIS = "…"
DIM = Style(dim=True)
SORTED = Style(bold=True, underline=True)


def fit(text: str, width: int, right: bool, column: Column[Any] | None = None) -> str:
    """`text` in exactly `width` cells: cut (as the column cuts, or with an ellipsis at the
    end), or padded on the left or right."""
    size = cell_len(text)
    if size > width:
        if column is not None and column.cut is not None and width > 0:
            return set_cell_size(column.cut(text, width), width)
        return set_cell_size(text, width - 1) + ELLIPSIS if width > 0 else ""
    padding = " " * (width - size)
    return padding + text if right else text + padding


class KeyedTable(TitledScrollView, can_focus=True):
    """Rows are replaced as a whole each refresh. Until the user moves the cursor it stays on
    the first row, the hottest (as in top and perf top); once moved, the highlighted row
    follows its key: the cursor and the scroll position stay where the user put them. When
    that row leaves the table the cursor goes back to the top, never to the row that took the
    old index."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First row", show=False),
        Binding("end,ctrl+end", "last", "Last row", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "keyed-table--header",
        "keyed-table--cursor",
    }

    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        color: $foreground;
        & > .keyed-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .keyed-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .keyed-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """

    class TableMessage(Message):
        """A message from one table (`control` lets handlers tell the two tables apart)."""

        def __init__(self, table: KeyedTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> KeyedTable:
            return self.table

    class SelectionChanged(TableMessage):
        """The highlighted row is now another one (moved, or another row slid under the cursor)."""

        def __init__(self, table: KeyedTable, row_key: Hashable | None) -> None:
            super().__init__(table)
            self.row_key = row_key

    class RowSelected(TableMessage):
        """Enter on a row, or a click on the highlighted row."""

        def __init__(self, table: KeyedTable, row_key: Hashable) -> None:
            super().__init__(table)
            self.row_key = row_key

    class HeaderSelected(TableMessage):
        """A click on a column's title."""

        def __init__(self, table: KeyedTable, column_id: str) -> None:
            super().__init__(table)
            self.column_id = column_id

    def __init__(self, columns: Sequence[Column[Any]], *, id: str) -> None:
        super().__init__(id=id)
        self.table_columns = tuple(columns)
        self._rows: tuple[TableRow, ...] = ()
        self._given: Sequence[TableRow] | None = None
        self._index: dict[Hashable, int] = {}
        self._cursor = 0
        # Set by the first move the user makes: the rows shown at start-up (psutil's, the
        # sampler not ready) must not pick the process that the screen then follows.
        self._placed = False
        self._sort: tuple[str, bool] | None = None  # (column id, descending)
        self._widths = self._fixed_widths()  # what the content wants
        self._shown_widths = self._widths  # what the pane's width leaves (0: not shown)
        self._lines: dict[TableRow, str] = {}  # the text of rows drawn at the current widths
        self._announced: Hashable | None = None

    # The rows

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def selected_key(self) -> Hashable | None:
        return self._rows[self._cursor].key if self._rows else None

    def show_sort(self, sort_column: str, reverse: bool) -> None:
        """Mark the sort column in the titles: ▼ largest first, ▲ smallest first."""
        for column in self.table_columns:
            if column.id == sort_column:
                sort = (column.id, column.descending != reverse)
                if sort != self._sort:
                    self._sort = sort
                    self.refresh_lines(self.scroll_offset.y, 1)
                    self._fit_columns()
                return

    def show_rows(self, rows: Sequence[TableRow]) -> None:
        """Make the table hold `rows`, in their order; the cursor stays on its row's key."""
        if rows is self._given:
            return  # the same rows object: nothing to compare or draw
        self._given = rows
        selected = self.selected_key
        before = self._rows
        self._rows = tuple(rows)
        self._index = {row.key: index for index, row in enumerate(self._rows)}
        self._widths = self._content_widths()
        if len(self._lines) > 4 * len(self._rows) + 64:
            self._lines.clear()
        self._fit_columns()
        moved = self._index.get(selected) if selected is not None and self._placed else None
        if moved is None and self._placed:
            # The row the user chose has left: back to the top, the hottest row, followed as
            # at start-up. Keeping the old index showed whatever slid under it, another row
            # every second, with the stack pane following each.
            self._placed = False
            moved = 0
        self._move(self._cursor if moved is None else moved, announce=False)
        self._refresh_changed(before)
        self.announce_selection()

    def _refresh_changed(self, before: tuple[TableRow, ...]) -> None:
        """Ask for the lines on screen that now show something else, and no others."""
        top = int(self.scroll_offset.y)
        height = max(0, self.size.height - 1)
        changed = [
            y
            for y in range(top, min(top + height, max(len(before), len(self._rows))))
            if y >= len(before) or y >= len(self._rows) or before[y] != self._rows[y]
        ]
        if changed:
            self.refresh_lines(changed[0] + 1, changed[-1] - changed[0] + 1)

    def announce_selection(self, force: bool = False) -> None:
        key = self.selected_key
        if force or key != self._announced:
            self._announced = key
            self.post_message(self.SelectionChanged(self, key))

    # Layout

    def _fixed_widths(self) -> tuple[int, ...]:
        return tuple(
            max(column.width or 0, cell_len(column.title) + 1) for column in self.table_columns
        )

    def _content_widths(self) -> tuple[int, ...]:
        """Fixed columns keep their width; the others grow with their longest cell (and never
        shrink back while the table lives, so lines do not jump about every second)."""
        widths = list(self._widths)
        for index, column in enumerate(self.table_columns):
            if column.width is None and self._rows:
                longest = max(cell_len(row.cells[index]) for row in self._rows)
                widths[index] = max(widths[index], longest)
        return tuple(widths)

    def _fit_columns(self) -> None:
        """Cut or drop columns, by their priorities, so the table fits the pane's width. The
        sort column is never dropped: the rows' order would have nothing to say it."""
        sort_id = self._sort[0] if self._sort is not None else None
        shown = fit_widths(
            self.scrollable_content_region.width or self._total_width(self._widths),
            self._widths,
            [
                tuple(step for step in column.shrinks if step.width or column.id != sort_id)
                for column in self.table_columns
            ],
            CELL_PADDING,
        )
        if shown != self._shown_widths:
            self._shown_widths = shown
            self._lines.clear()
            self.refresh()
        set_virtual_size(self, Size(self._total_width(shown), len(self._rows) + 1))

    @staticmethod
    def _total_width(widths: Sequence[int]) -> int:
        return sum(width + 2 * CELL_PADDING for width in widths if width > 0)

    def _shown_columns(self) -> list[tuple[Column[Any], int]]:
        return [
            (column, width)
            for column, width in zip(self.table_columns, self._shown_widths, strict=True)
            if width > 0
        ]

    @property
    def shown_column_ids(self) -> tuple[str, ...]:
        """The columns the pane's width leaves room for, left to right."""
        return tuple(column.id for column, _ in self._shown_columns())

    def _line_text(self, cells: Sequence[str]) -> str:
        pad = " " * CELL_PADDING
        return "".join(
            pad + fit(cell, width, column.numeric, column) + pad
            for cell, width, column in zip(
                cells, self._shown_widths, self.table_columns, strict=True
            )
            if width > 0
        )

    # Drawing

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.line_style
        if y == 0:
            strip = self._header_strip(base)
        else:
            index = scroll_y + y - 1
            if index >= len(self._rows):
                return Strip.blank(width, base)
            row = self._rows[index]
            text = self._lines.get(row)
            if text is None:
                text = self._lines[row] = self._line_text(row.cells)
            if index == self._cursor:
                style = base + self.get_component_rich_style("keyed-table--cursor")
            else:
                style = base + DIM if row.dim else base
            strip = Strip([Segment(text, style)], cell_len(text))
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _header_strip(self, base: Style) -> Strip:
        style = base + self.get_component_rich_style("keyed-table--header")
        sorted_style = style + SORTED
        pad = " " * CELL_PADDING
        segments = []
        sort_id, descending = self._sort if self._sort is not None else (None, False)
        for column, width in self._shown_columns():
            sorted_here = column.id == sort_id
            title = column.title
            if sorted_here:
                title += "▼" if descending else "▲"
            shown = fit(title, width, False)  # titles are left-aligned: padding on the right
            if not sorted_here:
                segments.append(Segment(pad + shown + pad, style))
            else:  # the sort column: only the title itself is underlined, not its padding
                text = shown.rstrip(" ")
                segments += [
                    Segment(pad, style),
                    Segment(text, sorted_style),
                    Segment(shown[len(text) :] + pad, style),
                ]
        return Strip(segments)

    # Moving

    def _move(self, row: int, announce: bool = True) -> None:
        row = max(0, min(row, len(self._rows) - 1))
        if announce:  # a move of the user's
            self._placed = True
        if row != self._cursor:
            old, self._cursor = self._cursor, row
            # Row i is line i + 1 of the virtual space (the title line is above row 0).
            self.refresh_lines(old + 1, 1)
            self.refresh_lines(row + 1, 1)
        self._scroll_to_cursor()
        if announce:
            self.announce_selection()

    def _scroll_to_cursor(self) -> None:
        if not self._rows:
            return
        top = int(self.scroll_offset.y)
        visible = max(1, self.size.height - 1)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True)

    def _page(self) -> int:
        return max(1, self.size.height - 2)

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
        self._move(len(self._rows) - 1)

    def action_select_cursor(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        scroll_x, scroll_y = self.scroll_offset
        if offset.y == 0:
            x = offset.x + scroll_x
            for column, width in self._shown_columns():
                x -= width + 2 * CELL_PADDING
                if x < 0:
                    self.post_message(self.HeaderSelected(self, column.id))
                    return
            return
        row = scroll_y + offset.y - 1
        if row < len(self._rows):
            if row == self._cursor:
                self.action_select_cursor()
            else:
                self._move(row)

    def on_resize(self, event: events.Resize) -> None:
        self._fit_columns()
        self._scroll_to_cursor()
