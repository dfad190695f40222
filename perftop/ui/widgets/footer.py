"""The key footer."""

from __future__ import annotations

from textual.widgets import Footer


class KeysFooter(Footer):
    """Textual's footer, with its keys in the first frame: Footer composes nothing until the
    screen's bindings are published after a refresh, so the first complete screen (the one
    with the keys) came two frames and ~0.15 s after the first. Recomposed as Footer is when
    the bindings change (focus moves)."""

    def __init__(self, *, compact: bool, show_command_palette: bool) -> None:
        super().__init__(compact=compact, show_command_palette=show_command_palette)
        self.set_reactive(Footer._bindings_ready, True)
