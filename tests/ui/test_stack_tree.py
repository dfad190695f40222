"""The call-stack pane: folded branches built only when unfolded, folding by keys and clicks,
the cursor kept by path, only changed lines drawn again, deep stacks, hostile names."""

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
    """The symbols of every node the widget has had converted, shown or folded."""
    assert tree.model is not None
    found, pending = [], [tree.model]
    while pending:
        node = pending.pop()
        found.append(node.symbol)
        # The view model's own record of what was asked for: reading it converts nothing.
        converted = node._children
        pending.extend(converted or ())
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


def cursor_text(pane: Pane) -> str:
    """The line under the cursor, as shown."""
    return widget_lines(pane.app, pane.tree)[pane.tree.cursor_line]


def test_enter_left_and_right_fold_unfold_and_move() -> None:
    """Enter toggles; left folds an unfolded branch, else goes to the parent; right unfolds a
    folded branch, else goes to its first child (as Textual's Tree and file managers do)."""

    async def script(pane: Pane) -> None:
        await pane.show(STACKS)
        await pane.toggle("cold")  # unfolded by Enter
        assert "cold_mid" in pane.text()
        assert "▼" in cursor_text(pane) and " cold " in cursor_text(pane)
        await pane.pilot.press("right")  # unfolded already: to its first child
        assert " cold_mid " in cursor_text(pane)
        await pane.pilot.press("left")  # cold_mid is folded: to its parent
        assert " cold " in cursor_text(pane)
        await pane.pilot.press("left")  # cold is unfolded: folds it, the cursor stays
        assert "cold_mid" not in pane.text() and " cold " in cursor_text(pane)
        assert "▶" in cursor_text(pane)
        await pane.pilot.press("right")  # folded: unfolds it
        assert "cold_mid" in pane.text() and " cold " in cursor_text(pane)
        await pane.pilot.press("enter")  # and Enter folds it again
        assert "cold_mid" not in pane.text()
        await pane.pilot.press("home")
        assert "PID 1 app" in cursor_text(pane)
        await pane.pilot.press("end")
        assert " cold " in cursor_text(pane)  # the last line
        await pane.pilot.press("up")
        assert " hot_leaf " in cursor_text(pane)

    run_pane(script)


def test_a_click_selects_a_line_and_toggles_it() -> None:
    async def script(pane: Pane) -> None:
        await pane.show(STACKS)
        line = next(
            i for i, text in enumerate(widget_lines(pane.app, pane.tree)) if " cold " in text
        )
        await pane.pilot.click(StackTree, offset=(30, line))
        assert pane.tree.cursor_line == line
        assert "cold_mid" in pane.text()

    run_pane(script)


def test_the_cursor_follows_its_frame_when_lines_move_above_it() -> None:
    """The next interval adds a hot branch above the selected line: the cursor stays on the
    frame it was on (by path), not on its line number."""
    later = (sample(60, "main", "new_hot", "new_leaf"), *STACKS)

    async def script(pane: Pane) -> None:
        await pane.show(STACKS)
        await pane.toggle("cold")
        await pane.pilot.press("down")  # cold_mid
        line_before = pane.tree.cursor_line
        text = await pane.show(later)
        assert "new_leaf" in text, text
        assert " cold_mid " in cursor_text(pane)
        assert pane.tree.cursor_line > line_before

    run_pane(script)


def test_an_identical_refresh_draws_no_line_again() -> None:
    """Every interval brings a new model; when it shows the same lines, nothing is drawn
    again (Textual's Tree was cleared and every line rendered every interval)."""

    async def script(pane: Pane) -> None:
        await pane.show(STACKS)
        await pane.toggle("cold")
        drawn = pane.tree.strips_drawn
        calls: list[int] = []
        render_line = pane.tree.render_line

        def counting(y: int) -> object:
            calls.append(y)
            return render_line(y)

        pane.tree.render_line = counting  # type: ignore[method-assign]
        for _ in range(3):
            await pane.show(STACKS)  # a new model of the same stacks each time
        assert calls == [] and pane.tree.strips_drawn == drawn
        # One share changes: that line, and only it, is drawn again.
        text = await pane.show((sample(94, "main", "hot", "hot_leaf"), *STACKS[1:]))
        assert "hot_leaf" in text
        assert 1 <= pane.tree.strips_drawn - drawn <= 3, pane.tree.strips_drawn - drawn

    run_pane(script)


def test_a_deep_chain_keeps_the_leaf_readable_at_80_columns() -> None:
    """30 frames deep, its run unfolded into its frames: the indentation is capped and says
    how many levels it leaves out, so the leaf's symbol is on screen (issue 19: 23 frames
    pushed it out of the pane)."""
    chain = (sample(100, *(f"frame_{depth:02d}" for depth in range(29)), "the_leaf_symbol"),)

    async def main() -> None:
        app = TreeApp()
        async with app.run_test(size=(80, 40)) as pilot:
            pane = Pane(app, pilot)
            await pane.show(chain)
            await pane.toggle("⋯ 29 frames")
            await pilot.press("end")
            await pilot.pause()
            text = pane.text()
            leaf = next(line for line in text.splitlines() if "the_leaf_symbol" in line)
            assert "100.0% [.] the_leaf_symbol" in leaf, text
            assert leaf.startswith("⋯"), leaf
            assert "frame_28" in text

    asyncio.run(main())


def test_hostile_names_are_shown_literally() -> None:
    """Symbols and modules come from other processes: markup in them is text, and control
    characters never reach the terminal."""
    hostile = (
        StackSample(
            1,
            1,
            "[bold red]x[/]",
            (
                Frame("main", "evil", False),
                Frame("evil[/]\x1b[31m[link=x]", "lib[b]evil.so", False),
            ),
            10,
            0,
        ),
    )

    async def script(pane: Pane) -> None:
        text = await pane.show(hostile)
        assert "evil[/]" in text and "[31m[link=x]" in text, text
        assert "lib[b]evil.so" in text, text
        assert "\x1b" not in text

    run_pane(script)
