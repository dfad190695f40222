"""What the call-stack pane's bottom-up view (`i`, the callers) costs to build, against the
top-down tree the pane has always built from the same stacks (issue 19).

3000 distinct stacks of one process, 12 to 40 frames deep, shaped like stackgen's (a few
entry points, then functions picked per level), a function on a third of them. Each build is
what the pane does when the view or the subject changes: the tree merged from the stacks,
then the lines it shows at first converted (the pane converts the branches it shows only).
CPU time, the median of some rounds; the peer is the top-down tree of the same stacks, so
the ratio says what turning the pane over costs beyond what it cost already.

Run: `python bench/callers_tree.py [--stacks N] [--rounds N] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import Figure, add_json_argument, median, report_figures

from perftop.model.samples import Frame, StackSample
from perftop.ui.widgets.stack_tree import EXPAND_OF_PARENT, EXPAND_SHARE
from perftop.viewmodel import StackNode, stack_tree

PID = 4242
TARGET_RATIO = 2.0  # the callers view may cost up to twice the tree the pane builds already
FUNCTION = ("hub", "app", False)


def stacks(count: int, seed: int = 19) -> list[StackSample]:
    rng = random.Random(seed)
    entries = [Frame(name, "app", False) for name in ("_start", "main", "worker_main")]
    hub = Frame(*FUNCTION)
    made: dict[tuple[Frame, ...], StackSample] = {}
    while len(made) < count:
        depth = rng.randint(12, 40)
        frames = [rng.choice(entries)]
        for level in range(1, depth):
            frames.append(Frame(f"f{level}_{rng.randrange(8)}", "app", False))
        if rng.random() < 1 / 3:
            frames.insert(rng.randint(1, len(frames) - 1), hub)
        chain = tuple(frames)
        made[chain] = StackSample(PID, PID, "app", chain, rng.randint(1, 50), 0)
    return list(made.values())


def shown(node: StackNode) -> int:
    """Convert the lines the pane shows at first: the root's children, and the children of
    each branch it unfolds by itself (a tenth of the whole and a third of its parent)."""
    count = 1
    for child in node.children:
        count += 1
        if child.share >= EXPAND_SHARE and child.share >= node.share * EXPAND_OF_PARENT:
            count += shown(child) - 1
    return count


def timed(builds: dict[str, Callable[[], StackNode]], rounds: int) -> dict[str, float]:
    """The median CPU milliseconds of each build, the builds taking turns round by round (the
    machine is shared: a burst of other work lands on both alike)."""
    times: dict[str, list[float]] = {name: [] for name in builds}
    for _ in range(rounds):
        for name, build in builds.items():
            start = time.process_time()
            shown(build())
            times[name].append(time.process_time() - start)
    return {name: median(values) * 1000 for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=15)
    add_json_argument(parser)
    args = parser.parse_args()
    sample = stacks(args.stacks)
    frames = sum(len(stack.frames) for stack in sample)
    print(f"{len(sample)} distinct stacks, {frames} frames, {args.rounds} rounds each")

    def top_down() -> StackNode:
        return stack_tree(sample, "PID", pid=PID)

    def callers_of_process() -> StackNode:
        return stack_tree(sample, "PID", pid=PID, callers=True)

    def top_down_function() -> StackNode:
        return stack_tree(sample, "hub", function=FUNCTION)

    def callers_of_function() -> StackNode:
        return stack_tree(sample, "hub", function=FUNCTION, callers=True)

    ms = timed(
        {
            "top-down process": top_down,
            "callers process": callers_of_process,
            "top-down function": top_down_function,
            "callers function": callers_of_function,
        },
        args.rounds,
    )
    figures = []
    for name, subject in (
        ("callers of the process", "process"),
        ("callers of a function", "function"),
    ):
        perftop, peer = ms[f"callers {subject}"], ms[f"top-down {subject}"]
        ratio = perftop / peer if peer > 0 else None
        figures.append(
            Figure(
                name=f"{name}, {len(sample)} stacks",
                unit="ms cpu",
                perftop=perftop,
                peer_name=f"top-down {subject}",
                peer=peer,
                target=f"<= {TARGET_RATIO:g}x top-down",
                met=None if ratio is None else ratio <= TARGET_RATIO,
            )
        )
    json_path: Path | None = args.json
    return report_figures(figures, json_path)


if __name__ == "__main__":
    raise SystemExit(main())
