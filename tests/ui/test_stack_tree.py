"""The call-stack pane builds folded branches only when they are unfolded."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from perftop.model import Frame, StackSample
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


def test_a_folded_branch_is_built_when_unfolded() -> None:
    async def main() -> None:
        app = TreeApp()
        async with app.run_test(size=(100, 20)) as pilot:
            tree = app.query_one(StackTree)
            tree.show_stacks(stack_tree(STACKS, "PID 1 app"), subject=1)
            await pilot.pause()
            labels = " | ".join(built(tree))
            assert "hot_leaf" in labels and "cold" in labels
            assert "cold_mid" not in labels and "cold_other" not in labels  # not built yet
            assert any("▶" in line and "cold" in line for line in widget_lines(app, tree))
            tree.focus()
            cold_line = next(i for i, line in enumerate(widget_lines(app, tree)) if " cold" in line)
            tree.cursor_line = cold_line  # no border here: widget line = tree line
            await pilot.press("enter")  # unfold it
            await pilot.pause()
            text = "\n".join(widget_lines(app, tree))
            assert "cold_mid" in text and "cold_other" in text, text
            assert "cold_inner" not in text  # one level unfolded, as a click would
            # The next interval, same subject: what the user unfolded stays unfolded.
            tree.show_stacks(stack_tree(STACKS, "PID 1 app"), subject=1)
            await pilot.pause()
            assert "cold_other" in "\n".join(widget_lines(app, tree))

    asyncio.run(main())


def test_hot_branches_unfold_when_the_subject_first_has_data() -> None:
    """The process selected before the sampler has data keeps its subject when data comes:
    its hot branches are new, so they unfold by the default rule (they stayed folded, one
    "▶ 97.8% __libc_start_call_main" line, because nothing had been unfolded before). A
    branch the user folds stays folded the next interval."""

    async def main() -> None:
        app = TreeApp()
        async with app.run_test(size=(100, 20)) as pilot:
            tree = app.query_one(StackTree)
            tree.show_stacks(stack_tree((), "PID 1 app"), subject=1)
            await pilot.pause()
            tree.show_stacks(stack_tree(STACKS, "PID 1 app"), subject=1)
            await pilot.pause()
            text = "\n".join(widget_lines(app, tree))
            assert "hot_leaf" in text, text
            tree.focus()
            hot_line = next(i for i, line in enumerate(widget_lines(app, tree)) if " hot" in line)
            tree.cursor_line = hot_line
            await pilot.press("enter")  # fold it
            await pilot.pause()
            tree.show_stacks(stack_tree(STACKS, "PID 1 app"), subject=1)
            await pilot.pause()
            assert "hot_leaf" not in "\n".join(widget_lines(app, tree))

    asyncio.run(main())


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

    async def main() -> None:
        app = TreeApp()
        async with app.run_test(size=(100, 20)) as pilot:
            tree = app.query_one(StackTree)
            tree.show_stacks(stack_tree(cold_first, "PID 1 app"), subject=1)
            await pilot.pause()
            text = "\n".join(widget_lines(app, tree))
            assert "rising_leaf" not in text and "other_leaf" not in text, text
            tree.focus()
            hot_line = next(i for i, line in enumerate(widget_lines(app, tree)) if " hot" in line)
            tree.cursor_line = hot_line
            await pilot.press("enter")  # the user folds "hot"
            await pilot.pause()
            tree.show_stacks(stack_tree(rising_now, "PID 1 app"), subject=1)
            await pilot.pause()
            text = "\n".join(widget_lines(app, tree))
            assert "rising_leaf" in text, text  # now half the time: unfolded
            assert "other_leaf" not in text, text  # 10%, a tenth of its parent: folded
            assert "hot_leaf" not in text, text  # folded by the user: stays folded

    asyncio.run(main())
