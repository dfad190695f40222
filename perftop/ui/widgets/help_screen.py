"""The `?` screen: every key, made from the same table as the bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from perftop.model.samples import Interval
from perftop.ui.keys import APP_KEYS, PANE_KEYS
from perftop.viewmodel.header import session_facts


def session_table(snapshot: Interval | None) -> Table:
    """ "This session": what the main screen names only in a token (the kernel headers)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row(Text("This session", style="bold underline"), "")
    for name, value in session_facts(snapshot):
        table.add_row(Text(name), Text(value))
    return table


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    seen: set[str] = set()
    for key in APP_KEYS:
        if key.action in seen:  # ctrl+c quits too; one line for quit is enough
            continue
        seen.add(key.action)
        table.add_row(Text(key.display), Text(key.help))
    table.add_row("", "")
    for keys, what in PANE_KEYS:
        table.add_row(Text(keys), Text(what))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", key_display="Esc"),
    ]

    def __init__(self, session: Interval | None = None) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "perftop keys"
            body.border_subtitle = "Esc or ? to close"
            # First: what the main screen has no line for (the kernel headers, the unwinder).
            yield Static(session_table(self.session), id="help-session")
            yield Static(help_table(), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
