"""The cgroups pane: which container or service is on the CPU. It takes the processes pane's
place when `g` groups the processes by cgroup."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message

from perftop.ui.widgets.keyed_table import KeyedTable
from perftop.viewmodel import CGROUP_COLUMNS


class CgroupTable(KeyedTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Zoom", key_display="Enter")
    ]

    class ZoomRequested(Message):
        """Enter on a cgroup: show its processes, functions and stacks alone."""

        def __init__(self, cgroup: str) -> None:
            super().__init__()
            self.cgroup = cgroup

    def __init__(self, *, id: str = "cgroups") -> None:
        super().__init__(CGROUP_COLUMNS, id=id)
        self.set_pane_title("Cgroups")

    @property
    def selected_cgroup(self) -> str | None:
        key = self.selected_key
        return key if isinstance(key, str) else None

    @on(KeyedTable.RowSelected)
    def _zoom(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        if isinstance(event.row_key, str):
            self.post_message(self.ZoomRequested(event.row_key))
