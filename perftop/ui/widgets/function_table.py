"""The functions pane: where the CPU time goes, as `perf top` shows it."""

from __future__ import annotations

from typing import ClassVar, cast

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message

from perftop.model.samples import FunctionKey
from perftop.ui.widgets.annotate_view import AnnotateRequested
from perftop.ui.widgets.keyed_table import KeyedTable
from perftop.viewmodel import FUNCTION_COLUMNS


class FunctionTable(KeyedTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Stacks", key_display="Enter"),
        # perf top's key; the accumulation toggle is A here (a elsewhere).
        Binding("a", "annotate", "Annotate", key_display="a"),
    ]

    class StacksRequested(Message):
        """Enter on a function: move to the stacks that pass through it."""

    def __init__(self, *, id: str = "functions") -> None:
        super().__init__(FUNCTION_COLUMNS, id=id)
        self.set_pane_title("Functions")

    @property
    def selected_function(self) -> FunctionKey | None:
        key = self.selected_key
        return cast(FunctionKey, key) if isinstance(key, tuple) else None

    def action_annotate(self) -> None:
        function = self.selected_function
        if function is not None:
            self.post_message(AnnotateRequested(function))

    @on(KeyedTable.RowSelected)
    def _show_stacks(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.StacksRequested())
