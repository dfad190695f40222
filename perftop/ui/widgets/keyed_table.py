"""A DataTable refreshed by row key, so the selection and the scroll position survive updates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowDoesNotExist

from perftop.viewmodel import Column, TableRow


class RowCell(Text):
    """The first cell of a row. It knows its row key, so `DataTable.sort` can put the rows in
    the view model's order (the view model sorts; the table only follows)."""

    __slots__ = ("row_key",)

    def __init__(self, text: str, row_key: str, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.row_key = row_key


class KeyedTable(DataTable[Text]):
    """Rows are added, updated cell by cell, or removed by key, then sorted once: never cleared
    and refilled, which would throw away the cursor and the scroll position every second."""

    class SelectionChanged(Message):
        """The highlighted row is now another one (moved, or another row slid under the cursor)."""

        def __init__(self, table: KeyedTable, row_key: str | None) -> None:
            super().__init__()
            self.table = table
            self.row_key = row_key

        @property
        def control(self) -> KeyedTable:
            return self.table

    def __init__(self, columns: Sequence[Column[Any]], *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.table_columns = tuple(columns)
        self._shown: dict[str, TableRow] = {}
        self._announced: str | None = None

    def on_mount(self) -> None:
        for column in self.table_columns:
            width = None if column.width is None else max(column.width, len(column.title) + 1)
            self.add_column(Text(column.title), key=column.id, width=width)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except RowDoesNotExist:
            return None
        return row_key.value

    def show_sort(self, sort_column: str, reverse: bool) -> None:
        """Mark the sort column in the titles: ▼ largest first, ▲ smallest first."""
        for column in self.table_columns:
            label = Text(column.title)
            if column.id == sort_column:
                descending = column.descending != reverse
                label = Text(column.title + ("▼" if descending else "▲"), style="bold underline")
            shown = self.columns[ColumnKey(column.id)]
            shown.label = label
            shown.content_width = max(shown.content_width, label.cell_len)
        self.refresh()

    def show_rows(self, rows: Sequence[TableRow]) -> None:
        """Make the table hold `rows`, in their order, changing only what changed."""
        selected = self.selected_key
        wanted = {row.key for row in rows}
        for key in [key for key in self._shown if key not in wanted]:
            self.remove_row(key)
            del self._shown[key]
        for row in rows:
            before = self._shown.get(row.key)
            if before is None:
                self.add_row(*self._cells(row), key=row.key)
            elif before != row:
                self._update(before, row)
            self._shown[row.key] = row
        if rows:
            order = {row.key: index for index, row in enumerate(rows)}
            first = self.table_columns[0].id
            self.sort(first, key=lambda cell: order[cell.row_key])
            if selected in order:
                self.move_cursor(row=order[selected])
        self.announce_selection()

    def announce_selection(self, force: bool = False) -> None:
        key = self.selected_key
        if force or key != self._announced:
            self._announced = key
            self.post_message(self.SelectionChanged(self, key))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self.announce_selection()

    def _cells(self, row: TableRow) -> list[Text]:
        return [self._cell(row, index) for index in range(len(self.table_columns))]

    def _cell(self, row: TableRow, index: int) -> Text:
        column = self.table_columns[index]
        options: dict[str, Any] = {
            "style": "dim" if row.dim else "",
            "justify": "right" if column.numeric else "left",
            "no_wrap": True,
            "overflow": "ellipsis",
        }
        if index == 0:
            return RowCell(row.cells[index], row.key, **options)
        # Always Text: a plain str cell would be parsed as markup, and these strings come from
        # other processes.
        return Text(row.cells[index], **options)

    def _update(self, before: TableRow, row: TableRow) -> None:
        for index, column in enumerate(self.table_columns):
            if before.cells[index] != row.cells[index] or before.dim != row.dim:
                self.update_cell(
                    row.key, column.id, self._cell(row, index), update_width=column.width is None
                )
