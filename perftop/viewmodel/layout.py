"""How the live screen shares its room: the tables' column widths and the processes pane's
height, as pure functions of the terminal's size and what there is to show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Below this many lines the processes pane holds at most SHORT_PROCESS_ROWS rows and the
# call-stack pane is its title line until it is focused: the functions pane gets the rest.
TALL_LINES = 32
SHORT_PROCESS_ROWS = 4
# From TALL_LINES, the processes pane takes at most this share of the body.
TALL_PROCESS_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class Shrink:
    """One step by which a column gives up room when a table is wider than its pane: down to
    `width` cells (0 drops the column). Steps of lower rank are taken first, across columns."""

    rank: int
    width: int


def fit_widths(
    available: int,
    wanted: Sequence[int],
    shrinks: Sequence[Sequence[Shrink]],
    padding: int = 1,
) -> tuple[int, ...]:
    """The width of each column (0: not shown) so that the table fits `available` cells.

    Each shown column costs its width and `padding` cells each side. The columns start at
    `wanted`; while they are too wide the steps are taken by rank (ties left to right), each
    only as far as needed, except a drop, which is whole. The room a drop freed beyond the
    need goes back to the columns cut before it, latest first. When every step is taken and
    the table is still too wide, the widths are the last ones: the pane scrolls sideways."""
    widths = list(wanted)

    def total() -> int:
        return sum(width + 2 * padding for width in widths if width > 0)

    steps = sorted(
        (step.rank, index, step.width)
        for index, column_steps in enumerate(shrinks)
        for step in column_steps
    )
    cut: list[int] = []  # the columns cut, in the order they were
    for _, index, floor in steps:
        excess = total() - available
        if excess <= 0:
            break
        if widths[index] <= floor:
            continue
        widths[index] = 0 if floor == 0 else max(floor, widths[index] - excess)
        cut.append(index)
    for index in reversed(cut):
        spare = available - total()
        if spare <= 0:
            break
        if 0 < widths[index] < wanted[index]:
            widths[index] += min(spare, wanted[index] - widths[index])
    return tuple(widths)


def process_pane_height(rows: int, body_lines: int, screen_lines: int) -> int:
    """The processes pane's height: its title, its column titles and its rows (at least one
    line of them), no taller, and capped so the functions keep the room: SHORT_PROCESS_ROWS
    rows below TALL_LINES lines, TALL_PROCESS_SHARE of the body from there."""
    chrome = 2  # the border title and the column titles
    shown = max(1, rows)
    if screen_lines < TALL_LINES:
        shown = min(shown, SHORT_PROCESS_ROWS)
    else:
        shown = min(shown, max(SHORT_PROCESS_ROWS, int(body_lines * TALL_PROCESS_SHARE) - chrome))
    return shown + chrome
