"""Screenshots of the flame graph at 80x24 (an SSH session) and 160x48, compared with accepted
ones. Accept new ones after a deliberate change with
`pytest tests/ui/test_flame_snapshots.py --snapshot-update`, and look at the SVGs in
tests/ui/__snapshots__/test_flame_snapshots before committing them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.ui.conftest import (
    SESSION_RECORDING,
    SYNTHETIC_RECORDING,
    paced_replay_app,
    wait_for_text,
)

SnapCompare = Callable[..., bool]


def shoot(
    snap_compare: SnapCompare, path: Path, size: tuple[int, int], keys: Iterable[str]
) -> bool:
    async def run_before(pilot: Pilot[None]) -> None:
        await wait_for_text(pilot, "REPLAY ENDED")
        await pilot.press(*keys)
        await pilot.pause()

    app = paced_replay_app(path)
    try:
        return snap_compare(app, terminal_size=size, run_before=run_before)
    finally:
        app.source.close()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_flame_of_a_real_session(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    # Real processes: a C call chain, dd in the kernel, python; the selection two frames down.
    assert shoot(snap_compare, SESSION_RECORDING, size, ["f", "down", "down"])


def test_flame_zoomed_into_a_frame(snap_compare: SnapCompare) -> None:
    # postgres › main › PostmasterMain zoomed: the breadcrumb in the title, kernel frames blue.
    keys = ["f", "right", "down", "down", "enter", "down", "right"]
    assert shoot(snap_compare, SYNTHETIC_RECORDING, (80, 24), keys)


def test_flame_hostile_names_and_a_jit_frame(snap_compare: SnapCompare) -> None:
    # Markup and escapes shown as text; the JIT frame's detail says why it has no name.
    assert shoot(
        snap_compare, SYNTHETIC_RECORDING, (160, 48), ["f", "down", "down", "down", "down"]
    )
