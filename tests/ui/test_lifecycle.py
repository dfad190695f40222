"""Starting and leaving: signals, a terminal that goes away, recording, the sampler thread."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from perftop.formats.recording import RecordingWriter, read_recording
from perftop.model.samples import Interval
from perftop.profile.accumulate import DecayingAccumulation
from perftop.ui.app import PerftopApp
from perftop.ui.lifecycle import run_app
from perftop.ui.messages import IntervalReady
from perftop.ui.terminal import HangupWatcher, terminal_gone
from tests.ui.conftest import FakeSource, wait_for, with_notices


def run(app: PerftopApp, script: object = None, exits: bool = True) -> None:
    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            if script is not None:
                await script(pilot)  # type: ignore[operator]
            if exits:
                await wait_for(pilot, lambda: app.return_code is not None)
            app.source.close()

    asyncio.run(main())


class Pty:
    """A terminal for the app to watch: `follower` is its side, `hang_up()` closes the other
    (what sshd does when the connection drops)."""

    def __init__(self) -> None:
        self.leader, self.follower = os.openpty()

    def hang_up(self) -> None:
        if self.leader >= 0:
            os.close(self.leader)
            self.leader = -1

    def close(self) -> None:
        self.hang_up()
        os.close(self.follower)


@pytest.fixture
def pty() -> Iterator[Pty]:
    terminal = Pty()
    yield terminal
    terminal.close()


def test_sigterm_exits_cleanly_with_its_status(fake_source: FakeSource, pty: Pty) -> None:
    app = PerftopApp(fake_source, terminal_fd=pty.follower)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: fake_source.delivered == 1)
        os.kill(os.getpid(), signal.SIGTERM)

    run(app, script)
    assert app.return_code == 128 + signal.SIGTERM


def test_signal_before_the_app_is_up_is_not_lost(fake_source: FakeSource, pty: Pty) -> None:
    app = PerftopApp(fake_source, terminal_fd=pty.follower, early_signals=[signal.SIGHUP])
    run(app)
    assert app.return_code == 128 + signal.SIGHUP


def test_a_vanished_terminal_ends_the_app(fake_source: FakeSource, pty: Pty) -> None:
    pty.hang_up()
    app = PerftopApp(fake_source, terminal_fd=pty.follower)
    run(app)
    assert app.return_code == 128 + signal.SIGHUP


def test_a_terminal_hanging_up_under_the_app_ends_it(fake_source: FakeSource, pty: Pty) -> None:
    app = PerftopApp(fake_source, terminal_fd=pty.follower)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: fake_source.delivered == 1)
        assert app.return_code is None
        pty.hang_up()

    run(app, script)
    assert app.return_code == 128 + signal.SIGHUP


def test_the_hangup_watcher_calls_once_at_the_hangup_and_not_after_stop() -> None:
    terminal = Pty()
    called = threading.Event()
    watcher = HangupWatcher(terminal.follower, called.set)
    watcher.start()
    try:
        assert not called.wait(0.2)
        terminal.hang_up()
        assert called.wait(2.0)
    finally:
        watcher.stop()
        terminal.close()
    terminal = Pty()
    called.clear()
    watcher = HangupWatcher(terminal.follower, called.set)
    watcher.start()
    watcher.stop()
    terminal.hang_up()
    assert not called.wait(0.2)
    terminal.close()


def test_terminal_gone_on_hangup_and_on_eof() -> None:
    leader, follower = os.openpty()
    try:
        assert not terminal_gone(follower)
        os.close(leader)  # the terminal emulator (or sshd) went away
        leader = -1
        assert terminal_gone(follower)
    finally:
        os.close(follower)
        if leader >= 0:
            os.close(leader)
    reader, writer = os.pipe()
    os.close(writer)  # stdin at EOF, the case that made Textual's input thread spin
    try:
        assert terminal_gone(reader)
    finally:
        os.close(reader)


def test_run_app_refuses_to_start_without_a_terminal(
    fake_source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_app(fake_source) == 2  # pytest's stdin is not a terminal
    assert "needs a terminal" in capsys.readouterr().err


def test_every_interval_is_recorded_even_when_the_screen_skips_some(
    recorded: list[Interval], tmp_path: Path
) -> None:
    path = tmp_path / "session.jsonl"
    source = FakeSource(recorded)
    source.end()
    recorder = RecordingWriter(path)
    app = PerftopApp(source, recorder=recorder)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.wait_for_sampler(0))

    run(app, script, exits=False)
    recorder.close()
    assert read_recording(path) == recorded


def test_only_the_newest_snapshot_waits_but_notices_are_never_dropped(
    recorded: list[Interval],
) -> None:
    def ready(latest: Interval) -> IntervalReady:
        return IntervalReady(latest, DecayingAccumulation().add(latest), None)

    plain = ready(recorded[0])
    noticed = ready(with_notices(recorded[0], "event switch failed"))
    assert plain.can_replace(ready(recorded[1]))
    assert not noticed.can_replace(ready(recorded[1]))


def test_the_view_model_never_imports_textual() -> None:
    code = "import sys, perftop.viewmodel, perftop.formats.recording, perftop.sampling.replay; "
    code += "sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_signal_arms_the_exit_deadline(fake_source: FakeSource, pty: Pty) -> None:
    armed: list[int] = []
    app = PerftopApp(
        fake_source,
        terminal_fd=pty.follower,
        early_signals=[signal.SIGTERM],
        exit_deadline=armed.append,
    )
    run(app)
    assert armed == [128 + signal.SIGTERM]
