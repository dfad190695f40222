"""Send the terminal only what changed on it, in short escape sequences.

Textual repaints every line of a widget that refreshed, and writes each styled segment as
`ESC[<style>m text ESC[0m`. Over SSH that is most of perftop's traffic: a table whose numbers
change every second is resent whole, borders and all. `ScreenDiff` remembers what each span of
each line was last painted with and turns an update into the writes that change the screen: a
span painted with the same cells again is skipped, and a changed one is cut to the cells between
its first and its last difference (what curses does for `top`). `render_strip` then writes a
style only where it changes.

Only partial updates (`ChopsUpdate`) are diffed; a full repaint (`LayoutUpdate`, after a resize
or a screen change) is sent as it is and starts the record afresh.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import RenderableType
from rich.style import Style
from textual._compositor import ChopsUpdate, CompositorUpdate
from textual.app import App
from textual.geometry import Size
from textual.screen import Screen
from textual.strip import Strip

# One write: (line, first column, the cells to paint there).
Write = tuple[int, int, Strip]
_Key = tuple[str, str, str | None]  # (text, SGR parameters, link)


def _sgr(style: Style | None, color_system: ColorSystem) -> str:
    if style is None:
        return ""
    ansi = style._ansi
    return ansi if ansi is not None else Strip.render_ansi(style, color_system)


def _keys(strip: Strip, color_system: ColorSystem) -> list[_Key]:
    """What the terminal shows for each segment: its text, its SGR, its link. Not the Style
    itself, whose meta (Textual's mouse offsets) differs between equal-looking cells."""
    return [
        (text, _sgr(style, color_system), style._link if style is not None else None)
        for text, style, _ in strip
    ]


def _common_cells(old: Sequence[_Key], new: Sequence[_Key], from_end: bool = False) -> int:
    """How many cells the two runs share at their start (or, `from_end`, at their end)."""
    order: Callable[[Sequence[Any]], Iterable[Any]] = reversed if from_end else iter
    cells = 0
    for before, after in zip(order(old), order(new), strict=False):
        if before == after:
            cells += cell_len(after[0])
            continue
        if before[1:] == after[1:]:  # same style: the text may still share some characters
            for a, b in zip(order(before[0]), order(after[0]), strict=False):
                if a != b:
                    break
                cells += cell_len(b)
        break
    return cells


class ScreenDiff:
    """What the terminal shows: per line, the spans painted by the last updates."""

    def __init__(self, color_system: ColorSystem = ColorSystem.TRUECOLOR) -> None:
        self.color_system = color_system
        # line -> first column -> (end column, the cells' keys)
        self._lines: dict[int, dict[int, tuple[int, list[_Key]]]] = {}

    def reset(self) -> None:
        """Forget the screen (it was repainted whole, resized, or cleared)."""
        self._lines.clear()

    def paint(self, y: int, x: int, strip: Strip) -> list[Write]:
        """The writes that make columns x .. x + cell_length of line y show `strip`."""
        end = x + strip.cell_length
        if end <= x:
            return []
        painted = self._lines.setdefault(y, {})
        keys = _keys(strip, self.color_system)
        before = painted.get(x)
        write: Write = (y, x, strip)
        if before is not None and before[0] == end:
            old = before[1]
            if old == keys:
                return []
            prefix = _common_cells(old, keys)
            suffix = min(_common_cells(old, keys, from_end=True), strip.cell_length - prefix)
            if prefix or suffix:
                write = (y, x + prefix, strip.crop(prefix, strip.cell_length - suffix))
        for start in [s for s, (e, _) in painted.items() if s < end and e > x]:
            del painted[start]
        painted[x] = (end, keys)
        return [write]

    def chops(
        self,
        chops: Sequence[Mapping[int, Strip | None]],
        spans: Iterable[tuple[int, int, int]],
        chop_ends: Sequence[Sequence[int]],
    ) -> list[Write]:
        """The writes for a Textual ChopsUpdate: the same cells Textual would paint (its own
        cropping rules), less what the terminal already shows."""
        writes: list[Write] = []
        for y, x1, x2 in spans:
            for end, (x, strip) in zip(chop_ends[y], chops[y].items(), strict=False):
                if strip is None or x > x2 or end <= x1:
                    continue
                if not (x2 > x >= x1 and end <= x2):
                    strip = strip.crop(0, min(end, x2) - x)
                writes.extend(self.paint(y, x, strip))
        return writes


def render_strip(strip: Strip, color_system: ColorSystem) -> str:
    """The strip as terminal output, with an SGR only where the style changes (Textual resets
    after every segment), ending in the default style."""
    out: list[str] = []
    current = ""
    for text, style, control in strip:
        if control:
            continue
        if style is not None and style._link:
            # Links keep Textual's own rendering (an OSC 8 around the text, then a reset).
            if current:
                out.append("\x1b[0m")
                current = ""
            out.append(Strip.render_style(style, text, color_system))
            continue
        sgr = _sgr(style, color_system)
        if sgr != current:
            out.append(f"\x1b[0;{sgr}m" if sgr else "\x1b[0m")
            current = sgr
        out.append(text)
    if current:
        out.append("\x1b[0m")
    return "".join(out)


def render_writes(writes: Iterable[Write], color_system: ColorSystem) -> str:
    return "".join(
        f"\x1b[{y + 1};{x + 1}H{render_strip(strip, color_system)}" for y, x, strip in writes
    )


class DiffedUpdate(CompositorUpdate):
    """A ChopsUpdate cut down to the writes that change the screen."""

    def __init__(self, writes: list[Write], color_system: ColorSystem) -> None:
        self.writes = writes
        self.color_system = color_system

    def render_segments(self, console: object) -> str:
        return render_writes(self.writes, self.color_system)


class TerminalDiff:
    """Sits between Textual's compositor and the terminal (PerftopApp._display)."""

    def __init__(self) -> None:
        self._diff = ScreenDiff()
        self._screen: tuple[int, Size] | None = None

    def update(
        self, screen_id: int, size: Size, renderable: object, color_system: ColorSystem | None
    ) -> object:
        if self._screen != (screen_id, size) or color_system is None:
            self._diff.reset()  # another screen, or a resize: Textual repaints it all
            self._screen = (screen_id, size)
        if not isinstance(renderable, ChopsUpdate) or color_system is None:
            self._diff.reset()  # a full repaint (LayoutUpdate), or something unforeseen
            return renderable
        self._diff.color_system = color_system
        try:
            writes = self._diff.chops(renderable.chops, renderable.spans, renderable.chop_ends)
        except Exception:  # never worse than Textual's own output
            self._diff.reset()
            return renderable
        return DiffedUpdate(writes, color_system)


class DiffedApp(App[None]):
    """An App whose frames reach the terminal through a TerminalDiff: only what changed is
    written. PERFTOP_FULL_REPAINT=1 sends Textual's output as it is (to compare the two)."""

    def __init__(self) -> None:
        super().__init__()
        self._terminal_diff = None if os.environ.get("PERFTOP_FULL_REPAINT") else TerminalDiff()

    def _display(self, screen: Screen[object], renderable: RenderableType | None) -> None:
        if self._terminal_diff is not None and renderable is not None:
            renderable = self._terminal_diff.update(  # type: ignore[assignment]
                id(screen), screen.size, renderable, self.console._color_system
            )
        super()._display(screen, renderable)
