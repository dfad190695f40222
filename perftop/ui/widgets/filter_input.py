"""The one-line prompt behind `p` (PIDs) and `/` (text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

# Returns the error to show, or None when the value is fine.
Check = Callable[[str], str | None]


class FilterInput(ModalScreen[str | None]):
    """Dismisses with the entered text ("" clears the filter), or None on Esc. A value `check`
    refuses is reported and the prompt stays open to be fixed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", key_display="Esc")
    ]

    def __init__(
        self, prompt: str, value: str, placeholder: str, check: Check | None = None
    ) -> None:
        super().__init__()
        self._prompt = prompt
        self._value = value
        self._placeholder = placeholder
        self._check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box"):
            yield Label(self._prompt, id="filter-prompt", markup=False)
            yield Input(value=self._value, placeholder=self._placeholder, id="filter-input")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        error = self._check(value) if self._check is not None else None
        if error is not None:
            self.notify(error, severity="error", markup=False)
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
