"""The call-stack pane builds folded branches only when they are unfolded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from perftop.model.samples import Frame, StackSample
from perftop.ui.widgets.stack_tree import StackTree
from perftop.viewmodel import stack_tree
from tests.ui.conftest import widget_lines


def sample(samples: int, *symbols: str) -> StackSample:
    return StackSample(1, 1, "app", tuple(Frame(s, "app", False) for s in symbols), samples, 0)


# "hot" (95%) unfolds by itself; "cold" (5%) stays folded, with three levels below it.
STACKS = (
    sample(95, "main", "hot", "hot_leaf"),
    sample(3, "main", "cold", "cold_mid", "cold_inner", "cold_leaf"),
    sample(2, "main", "cold", "cold_other"),
)


class TreeApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StackTree()


def built(tree: StackTree) -> list[str]:
    """The symbols of every node the widget holds, shown or folded."""
    found, pending = [], list(tree.root.children)
    while pending:
        node = pending.pop()
        found.append(str(node.label))
        pending.extend(node.children)
    return found


class Pane:
    """A StackTree alone on a 100x20 screen, driven as the user would."""

    def __init__(self, app: TreeApp, pilot: Pilot[None]) -> None:
        self.app, self.pilot = app, pilot
        self.tree = app.query_one(StackTree)

    async def show(self, stacks: tuple[StackSample, ...]) -> str:
        """Show `stacks` for the same subject as before; the pane's text."""
        self.tree.show_stacks(stack_tree(stacks, "PID 1 app"), subject=1)
        await self.pilot.pause()
        return self.text()

    def text(self) -> str:
        return "\n".join(widget_lines(self.app, self.tree))

    async def toggle(self, symbol: str) -> None:
        """Enter on the first line showing `symbol`: unfolds it, or folds it."""
        self.tree.focus()
        lines = widget_lines(self.app, self.tree)
        # No border here: widget line = tree line.
        self.tree.cursor_line = next(i for i, line in enumerate(lines) if f" {symbol}" in line)
        await self.pilot.press("enter")
        await self.pilot.pause()


def run_pane(script: Callable[[Pane], Awaitable[None]]) -> None:
    async def main() -> None:
        app = TreeApp()
        async with app.run_test(size=(100, 20)) as pilot:
            await script(Pane(app, pilot))

    asyncio.run(main())


def test_a_folded_branch_is_built_when_unfolded() -> None:
    async def script(pane: Pane) -> None:
        await pane.show(STACKS)
        labels = " | ".join(built(pane.tree))
        assert "hot_leaf" in labels and "cold" in labels
        assert "cold_mid" not in labels and "cold_other" not in labels  # not built yet
        assert any("▶" in line and "cold" in line for line in widget_lines(pane.app, pane.tree))
        await pane.toggle("cold")  # unfold it
        text = pane.text()
        assert "cold_mid" in text and "cold_other" in text, text
        assert "cold_inner" not in text  # one level unfolded, as a click would
        # The next interval, same subject: what the user unfolded stays unfolded.
        assert "cold_other" in await pane.show(STACKS)

    run_pane(script)


def test_hot_branches_unfold_when_the_subject_first_has_data() -> None:
    """The process selected before the sampler has data keeps its subject when data comes:
    its hot branches are new, so they unfold by the default rule (they stayed folded, one
    "▶ 97.8% __libc_start_call_main" line, because nothing had been unfolded before). A
    branch the user folds stays folded the next interval."""

    async def script(pane: Pane) -> None:
        await pane.show(())
        text = await pane.show(STACKS)
        assert "hot_leaf" in text, text
        await pane.toggle("hot")  # fold it
        assert "hot_leaf" not in await pane.show(STACKS)

    run_pane(script)


def test_a_branch_that_becomes_hot_unfolds_unless_the_user_folded_it() -> None:
    """Fold states are not decided by the first, short interval: a branch shown folded while
    cold unfolds when it becomes hot (a tenth of the whole and a third of its parent); one the
    user folded stays folded however hot."""
    cold_first = (
        sample(90, "main", "hot", "hot_leaf"),
        sample(5, "main", "rising", "rising_leaf"),
        sample(5, "main", "other", "other_leaf"),
    )
    rising_now = (
        sample(40, "main", "hot", "hot_leaf"),
        sample(50, "main", "rising", "rising_leaf"),
        sample(10, "main", "other", "other_leaf"),
    )

    async def script(pane: Pane) -> None:
        text = await pane.show(cold_first)
        assert "rising_leaf" not in text and "other_leaf" not in text, text
        await pane.toggle("hot")  # the user folds "hot"
        text = await pane.show(rising_now)
        assert "rising_leaf" in text, text  # now half the time: unfolded
        assert "other_leaf" not in text, text  # 10%, a tenth of its parent: folded
        assert "hot_leaf" not in text, text  # folded by the user: stays folded

    run_pane(script)
