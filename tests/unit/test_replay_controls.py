"""A replay's pause, step and seek (the `space`, `.`, `,`, `[` and `]` keys' source side)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from perftop.sampling.replay import ReplaySource

SYNTHETIC = Path(__file__).parent.parent / "data" / "synthetic.jsonl"  # four intervals


def cc1_samples(source: ReplaySource) -> int:
    interval = source.next_interval()
    assert interval is not None
    return sum(stack.samples for stack in interval.stacks if stack.pid == 6006)


def test_seek_moves_by_intervals_both_ways_and_clamps() -> None:
    source = ReplaySource(SYNTHETIC, interval_s=0)
    try:
        assert cc1_samples(source) == 90 and source.position == 0
        source.seek(3)
        assert cc1_samples(source) == 20 and source.position == 3  # the last
        source.seek(-2)
        assert cc1_samples(source) == 90 and source.position == 1  # read again from the start
        source.seek(-10)
        source.next_interval()
        assert source.position == 0
        source.seek(10)
        source.next_interval()
        assert source.position == 3  # past the end: the last
        assert source.next_interval() is None  # and then the end, as before
        source.seek(-1)  # a replay that ended can be moved back into
        assert cc1_samples(source) == 90 and source.position == 2
    finally:
        source.close()


def test_paused_hands_out_only_steps_and_close_still_ends_it() -> None:
    source = ReplaySource(SYNTHETIC, interval_s=0)
    got: list[int | None] = []

    def play() -> None:
        while source.next_interval() is not None:
            got.append(source.position)
        got.append(None)

    source.pause(True)
    player = threading.Thread(target=play)
    player.start()
    try:
        time.sleep(0.3)
        assert got == []  # paused before the first: nothing
        source.step()
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert got == [0]  # one step, one interval
        source.pause(False)
        player.join(5)
        assert got == [0, 1, 2, 3, None]
    finally:
        source.close()
        player.join(5)


def test_close_wakes_a_paused_replay() -> None:
    source = ReplaySource(SYNTHETIC, interval_s=0)
    source.pause(True)
    result: list[object] = []
    player = threading.Thread(target=lambda: result.append(source.next_interval()))
    player.start()
    time.sleep(0.1)
    source.close()
    player.join(2)
    assert not player.is_alive() and result == [None]


def test_the_recorded_pace_is_kept_between_intervals() -> None:
    source = ReplaySource(SYNTHETIC, interval_s=0.2)
    try:
        source.next_interval()  # the first shows at once
        started = time.monotonic()
        source.next_interval()
        assert time.monotonic() - started >= 0.18
    finally:
        source.close()
