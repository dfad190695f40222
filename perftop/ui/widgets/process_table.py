"""The processes pane: who is on the CPU."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message

from perftop.ui.widgets.keyed_table import KeyedTable
from perftop.viewmodel import PROCESS_COLUMNS


class ProcessTable(KeyedTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Zoom", key_display="Enter")
    ]

    class ZoomRequested(Message):
        """Enter on a process: show its functions and stacks alone."""

        def __init__(self, pid: int) -> None:
            super().__init__()
            self.pid = pid

    def __init__(self, *, id: str = "processes") -> None:
        super().__init__(PROCESS_COLUMNS, id=id)
        self.set_pane_title("Processes")

    @property
    def selected_pid(self) -> int | None:
        key = self.selected_key
        return key if isinstance(key, int) else None

    @on(KeyedTable.RowSelected)
    def _zoom(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        if isinstance(event.row_key, int):
            self.post_message(self.ZoomRequested(event.row_key))
