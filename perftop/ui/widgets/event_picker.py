"""The `e` screen: pick the event to sample on; events this machine cannot sample say why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from perftop.model.events import EVENTS
from perftop.sanitize import printable


def event_prompt(name: str, reason: str | None, current: bool) -> Text:
    known = EVENTS.get(name)
    prompt = Text(no_wrap=True, overflow="ellipsis")
    prompt.append("● " if current else "  ", style="bold")
    prompt.append(f"{printable(name, 24):<20}", style="dim" if reason else "bold")
    if reason is None:
        prompt.append("✓ ", style="green")
        prompt.append(known.description if known else "")
    else:
        prompt.append("✗ unsupported: ", style="red")
        prompt.append(printable(reason, 120), style="dim")
    return prompt


class EventPicker(ModalScreen[str | None]):
    """Dismisses with the chosen event, or None. An unsupported choice is refused on the spot,
    with its reason, and the list stays open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", key_display="Esc")
    ]

    def __init__(self, events: Mapping[str, str | None], current: str) -> None:
        super().__init__()
        self._events = dict(events)
        self._current = current

    def compose(self) -> ComposeResult:
        options = [
            Option(event_prompt(name, reason, name == self._current), id=name)
            for name, reason in self._events.items()
        ]
        picker = OptionList(*options, id="event-list")
        picker.border_title = "Sample on which event?"
        picker.border_subtitle = "Enter choose · Esc cancel"
        yield picker

    def on_mount(self) -> None:
        picker = self.query_one(OptionList)
        names = list(self._events)
        if self._current in names:
            picker.highlighted = names.index(self._current)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id
        if name is None:
            return
        reason = self._events.get(name)
        if reason is not None:
            self.notify(
                f"{printable(name, 24)} cannot be sampled here: {printable(reason, 120)}",
                severity="error",
                markup=False,
            )
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
