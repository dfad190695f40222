"""The terminal diff: whatever it leaves out, the screen must end up as Textual's full output
would leave it. Checked on a small terminal model fed both byte streams."""

from __future__ import annotations

import random
import re

from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.geometry import Region, Size
from textual.strip import Strip

from perftop.ui.screen_diff import TerminalDiff, render_strip

WIDTH, HEIGHT = 48, 8
STYLES = [
    None,
    Style(color="red"),
    Style(bold=True),
    Style(color="rgb(10,20,30)", bgcolor="rgb(200,200,200)"),
    Style(color="red", meta={"offset": (3, 4)}),  # looks like the second: meta is not shown
]
TOKEN = re.compile(r"\x1b\[(\d+);(\d+)H|\x1b\[([\d;]*)m|\n|(.)", re.S)


class Terminal:
    """Cursor addressing, SGR and text: enough of a terminal for Textual's output."""

    def __init__(self) -> None:
        self.cells = [[(" ", "")] * WIDTH for _ in range(HEIGHT)]
        self.x = self.y = 0
        self.sgr = ""

    def feed(self, data: str) -> None:
        for match in TOKEN.finditer(data):
            row, column, params, char = match.groups()
            if row is not None:
                self.y, self.x = int(row) - 1, int(column) - 1
            elif params is not None:
                for param in params.split(";") if params else ["0"]:
                    self.sgr = "" if param == "0" else f"{self.sgr};{param}".lstrip(";")
            elif char is not None:
                self.cells[self.y][self.x] = (char, self.sgr)
                self.x += 1

    def text(self) -> list[str]:
        return ["".join(char for char, _ in line) for line in self.cells]


def random_strip(rng: random.Random, width: int) -> Strip:
    segments = []
    left = width
    while left:
        length = min(left, rng.randint(1, 7))
        text = "".join(rng.choice("ab1 ") for _ in range(length))
        segments.append(Segment(text, rng.choice(STYLES)))
        left -= length
    return Strip(segments, width)


def mutate(rng: random.Random, strip: Strip) -> Strip:
    """Change a few cells, as a refreshed number does."""
    if rng.random() < 0.4:
        return strip
    cells = [(text, style) for segment in strip for text, style in [(segment.text, segment.style)]]
    chars = [(char, style) for text, style in cells for char in text]
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(chars))
        chars[index] = (rng.choice("xyz9"), rng.choice(STYLES))
    return Strip([Segment(char, style) for char, style in chars], len(chars))


def chops_update(lines: dict[int, dict[int, Strip]], cuts: list[int]) -> ChopsUpdate:
    chops = [dict(lines[y]) for y in range(HEIGHT)]
    ends = [[*cuts[1:]] for _ in range(HEIGHT)]
    spans = [(y, 0, WIDTH) for y in sorted(lines)]
    return ChopsUpdate(chops, spans, ends)  # type: ignore[arg-type]


def frames(rng: random.Random, count: int) -> list[ChopsUpdate]:
    cuts = [0, 20, WIDTH]
    lines = {
        y: {0: random_strip(rng, 20), 20: random_strip(rng, WIDTH - 20)} for y in range(HEIGHT)
    }
    updates = [chops_update(lines, cuts)]
    for _ in range(count):
        if rng.random() < 0.2:  # an overlay (a toast) moves the cuts of every line
            cut = rng.randint(5, WIDTH - 5)
            cuts = [0, cut, WIDTH]
            lines = {
                y: {0: random_strip(rng, cut), cut: random_strip(rng, WIDTH - cut)} for y in lines
            }
        else:
            lines = {
                y: {x: mutate(rng, strip) for x, strip in line.items()} for y, line in lines.items()
            }
        updates.append(chops_update(lines, cuts))
    return updates


def test_the_screen_ends_up_as_textual_would_leave_it() -> None:
    rng = random.Random(7)
    console_systems = ColorSystem.TRUECOLOR
    full, diffed = Terminal(), Terminal()
    diff = TerminalDiff()
    sent_full = sent_diffed = 0
    for update in frames(rng, 300):
        reference = update.render_segments(_Console())
        ours = diff.update(1, Size(WIDTH, HEIGHT), update, console_systems).render_segments(None)
        full.feed(reference)
        diffed.feed(ours)
        assert diffed.cells == full.cells
        sent_full += len(reference)
        sent_diffed += len(ours)
    assert sent_diffed < sent_full / 2


def test_an_unchanged_screen_sends_nothing_and_one_digit_sends_little() -> None:
    strip = Strip([Segment("cpu ", Style(bold=True)), Segment("42.0%", Style(color="red"))], 9)
    diff = TerminalDiff()
    first = ChopsUpdate([{0: strip}], [(0, 0, 9)], [[9]])
    assert diff.update(1, Size(9, 1), first, ColorSystem.TRUECOLOR).render_segments(None)
    assert diff.update(1, Size(9, 1), first, ColorSystem.TRUECOLOR).render_segments(None) == ""
    changed = Strip([Segment("cpu ", Style(bold=True)), Segment("43.0%", Style(color="red"))], 9)
    update = ChopsUpdate([{0: changed}], [(0, 0, 9)], [[9]])
    out = diff.update(1, Size(9, 1), update, ColorSystem.TRUECOLOR).render_segments(None)
    assert out == "\x1b[1;6H\x1b[0;31m3\x1b[0m"


def test_a_full_repaint_or_a_resize_starts_afresh() -> None:
    strip = Strip([Segment("abc")], 3)
    diff = TerminalDiff()
    update = ChopsUpdate([{0: strip}], [(0, 0, 3)], [[3]])
    diff.update(1, Size(3, 1), update, ColorSystem.TRUECOLOR)
    layout = LayoutUpdate([[strip]], Region(0, 0, 3, 1))
    assert diff.update(1, Size(3, 1), layout, ColorSystem.TRUECOLOR) is layout
    assert diff.update(1, Size(3, 1), update, ColorSystem.TRUECOLOR).render_segments(None)
    assert diff.update(1, Size(4, 1), update, ColorSystem.TRUECOLOR).render_segments(None)
    assert diff.update(2, Size(4, 1), update, ColorSystem.TRUECOLOR).render_segments(None)


def test_styles_are_written_only_where_they_change() -> None:
    red = Style(color="red")
    strip = Strip([Segment("ab", red), Segment("cd", red), Segment("e"), Segment("f", red)], 6)
    assert render_strip(strip, ColorSystem.TRUECOLOR) == "\x1b[0;31mabcd\x1b[0me\x1b[0;31mf\x1b[0m"


class _Console:
    """What Strip.render needs of a Console."""

    _color_system = ColorSystem.TRUECOLOR
