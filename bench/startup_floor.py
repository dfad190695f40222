"""The floor of bench/startup.py's first-screen figure: a minimal Textual app (one line of text
and a footer with one key) started the same way as perftop, so the figure shows what Textual
itself costs to its first painted frame on this machine, under the same load, in the same run.
It takes perftop's start-up boost (perftop.launch) before importing Textual, as perftop does:
on a busy machine the floor would otherwise be measured at a lower priority than perftop.

Run by bench/startup.py; on its own: `.venv/bin/python bench/startup_floor.py` (q quits).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # perftop, for its boost
from perftop.system.boost import StartupBoost

BOOST = StartupBoost.begin()

from textual.app import App, ComposeResult  # noqa: E402
from textual.binding import BindingType  # noqa: E402
from textual.widgets import Footer, Static  # noqa: E402


class FloorApp(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Static("startup floor")
        yield Footer()  # its "Quit" is the marker, as perftop's footer is


if __name__ == "__main__":
    try:
        FloorApp().run()
    finally:
        BOOST.end()
