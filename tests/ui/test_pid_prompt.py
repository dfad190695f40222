"""The screen's `p` prompt refuses what `perftop -p` refuses, in the same one line."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from perftop.cli.main import main
from perftop.model.pids import MAX_PIDS
from perftop.model.samples import Interval
from perftop.ui.app import PerftopApp
from perftop.ui.widgets.filter_input import FilterInput
from tests.ui.conftest import FakeSource, wait_for, wait_for_text
from tests.ui.test_keys import drive

TOO_MANY = ",".join(str(pid) for pid in range(1, MAX_PIDS + 2))


def command_line_error(pids: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What `perftop -p PIDS` says, without its "perftop: " prefix."""
    assert main(["--batch", "-p", pids]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    return line.removeprefix("perftop: ")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("²", "'²' is not a PID (a positive whole number)"),
        (TOO_MANY, f"at most {MAX_PIDS} PIDs can be filtered at once"),
        # The autouse fixture makes 1001 ... 6006 the only live processes.
        ("2002, 999999", "no process with PID 999999"),
    ],
    ids=["unicode-digit", "too-many", "no-such-process"],
)
def test_the_prompt_says_what_the_command_line_says(
    fake_source: FakeSource, typed: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert command_line_error(typed, capsys) == message
    app = PerftopApp(fake_source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: fake_source.delivered == 1)
        await pilot.press("p", *typed, "enter")
        await wait_for_text(pilot, message)
        assert isinstance(app.screen, FilterInput), "the prompt stays open to be fixed"
        assert fake_source.calls == []

    drive(app, script, size=(160, 48))


def test_a_replay_does_not_ask_whether_a_pid_exists(recorded: list[Interval]) -> None:
    """Only a live source checks existence: a replay's PIDs are of another time."""
    source = FakeSource([recorded[-1]])
    source.live = False  # type: ignore[misc]
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("p", *"999999", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, FilterInput))
        assert source.calls == [("pid_filter", (999999,))]

    drive(app, script)
