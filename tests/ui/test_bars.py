"""The header and the cost bar are redrawn only when what they say changed."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

from perftop.formats.recording import read_recording
from perftop.ui.widgets.cost_bar import CostBar
from perftop.ui.widgets.header import HeaderBar
from perftop.viewmodel import ViewOptions
from tests.ui.conftest import SYNTHETIC_RECORDING


class BarsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield CostBar(id="cost")


def test_an_unchanged_header_and_cost_bar_are_not_rendered_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = read_recording(SYNTHETIC_RECORDING)[:2]
    updates: list[str | None] = []
    update = Static.update

    def counted(widget: Static, *args: object, **kwargs: object) -> None:
        updates.append(widget.id)
        update(widget, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Static, "update", counted)
    app = BarsApp()

    async def main() -> None:
        async with app.run_test(size=(120, 10)) as pilot:
            header, cost = app.query_one(HeaderBar), app.query_one(CostBar)
            updates.clear()
            for _ in range(3):  # the same interval again: a repaint of the same screen
                header.show(first, ViewOptions(), live=True, ended=False)
                cost.show(first)
                await pilot.pause()
            assert updates == ["header", "cost"]
            header.show(second, ViewOptions(), live=True, ended=False)
            header.show(second, ViewOptions(paused=True), live=True, ended=False)
            await pilot.pause()
            assert updates == ["header", "cost", "header", "header"]
            assert "paused" in str(header.render()).casefold()

    asyncio.run(main())
