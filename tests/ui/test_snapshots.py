"""Screenshots of the screen at 80x24 (an SSH session) and 160x48, compared with accepted ones.

Accept new ones after a deliberate change with `pytest tests/ui --snapshot-update` and look at
the SVGs in tests/ui/__snapshots__ before committing them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from textual.pilot import Pilot

from tests.ui.conftest import (
    SESSION_RECORDING,
    SYNTHETIC_RECORDING,
    paced_replay_app,
    wait_for_text,
)

SnapCompare = Callable[..., bool]


def after_replay(*keys: str) -> Callable[[Pilot[None]], object]:
    async def run_before(pilot: Pilot[None]) -> None:
        await wait_for_text(pilot, "REPLAY ENDED")
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


def shoot(
    snap_compare: SnapCompare, path: object, size: tuple[int, int], keys: Iterable[str] = ()
) -> bool:
    app = paced_replay_app(path)  # type: ignore[arg-type]
    try:
        return snap_compare(app, terminal_size=size, run_before=after_replay(*keys))
    finally:
        app.source.close()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_session(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    assert shoot(snap_compare, SESSION_RECORDING, size)


def test_zoomed_into_a_process_with_functions_focused(snap_compare: SnapCompare) -> None:
    assert shoot(snap_compare, SYNTHETIC_RECORDING, (80, 24), ["down", "down", "enter", "tab"])


def test_stripped_library_explained(snap_compare: SnapCompare) -> None:
    assert shoot(snap_compare, SYNTHETIC_RECORDING, (160, 48), ["down", "down"])


def test_help(snap_compare: SnapCompare) -> None:
    assert shoot(snap_compare, SYNTHETIC_RECORDING, (80, 24), ["question_mark"])


def test_event_picker(snap_compare: SnapCompare) -> None:
    assert shoot(snap_compare, SYNTHETIC_RECORDING, (80, 24), ["e"])
