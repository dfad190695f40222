"""The peer of bench/screen_cost.py: a minimal Textual app drawn through the Line API, laid out
like perftop's screen, that rewrites every line it shows once a second.

Not perftop: what Textual itself costs for a screen of perftop's size and number of lines, the
floor a Textual program cannot go under (issue 15). Based on ../shared/tools/textual_floor.py
(three bordered Line API panes), laid out as perftop is at 120 columns: a two-line header, two
stacked table panes on the left and a pane on the right, a one-line bar and the keys footer. Each
second every line of every pane gets new text (`render_line` returns a Strip of one segment) and
the header and the bar get new text, so it does at least the drawing perftop needs when every row
changes: an upper bound of the floor, not a best case.

Run: `python bench/line_api_peer.py [--changed]` (`--changed`: a quarter of the lines change).
"""

from __future__ import annotations

import argparse
import random
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.app import App, ComposeResult
from textual.containers import Container, Vertical
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Static

INTERVAL_S = 1.0


class Pane(Widget):
    """Lines of text that change every interval, each drawn as one segment."""

    DEFAULT_CSS = """
    Pane {
        height: 1fr;
        border: none;
        border-top: solid $accent;
        border-title-align: left;
    }
    """

    def __init__(self, title: str, seed: int, changed_only: bool) -> None:
        super().__init__()
        self.border_title = title
        self.rng = random.Random(seed)
        self.changed_only = changed_only
        self.lines: list[str] = []
        self.tick = 0

    def update_lines(self) -> None:
        self.tick += 1
        new = []
        for index in range(self.size.height or 20):
            if self.changed_only and index < len(self.lines) and index % 4:
                new.append(self.lines[index])
                continue
            new.append(
                f"{self.rng.random() * 100:6.2f}%  {self.rng.randrange(10**6):8d}  "
                f"some_function_name_{index}_{self.tick % 7}  libfoo.so.6"
            )
        self.lines = new
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        text = self.lines[y] if y < len(self.lines) else ""
        return Strip([Segment(text[:width].ljust(width), Style(bold=y == 0))], width)


class LineApiPeer(App[None]):
    CSS = """
    #header { height: 2; padding: 0 1; }
    #bar { height: 1; padding: 0 1; }
    #body { height: 1fr; layout: horizontal; }
    #tables { width: 1fr; min-width: 78; }
    #stacks { width: 1fr; }
    """
    BINDINGS: ClassVar = [("q", "quit", "Quit")]

    def __init__(self, changed_only: bool) -> None:
        super().__init__()
        self.panes = [
            Pane("Processes", 1, changed_only),
            Pane("Functions", 2, changed_only),
            Pane("Call stacks", 3, changed_only),
        ]
        self.panes[2].id = "stacks"
        self.tick = 0

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Container(id="body"):
            with Vertical(id="tables"):
                yield self.panes[0]
                yield self.panes[1]
            yield self.panes[2]
        yield Static(id="bar")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(INTERVAL_S, self.update_screen)

    def update_screen(self) -> None:
        self.tick += 1
        self.query_one("#header", Static).update(
            f"interval {self.tick}  {random.random() * 100:.1f}% busy\nall processes  live",
            layout=False,
        )
        self.query_one("#bar", Static).update(f"cost {random.random():.2f}% CPU", layout=False)
        for pane in self.panes:
            pane.update_lines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--changed", action="store_true", help="a quarter of the lines change")
    LineApiPeer(parser.parse_args().changed).run()


if __name__ == "__main__":
    main()
