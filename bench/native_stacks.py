"""Native user stacks for the unwinding benchmarks (bench/unwind_accuracy.py, bench/bpf_cost.py):
the workload without frame pointers, perftop's recorded stacks reduced to their native frames,
and the depth both profilers are compared on.

The workload is tests/bpf/test_unwind.py's CHAIN_C (main -> kestrel_a ... kestrel_g ->
leaf_spin), built as that test builds it, -O2 -fomit-frame-pointer, so the test and the
benchmarks walk the same program.

Depth, defined once for perftop and for perf: the native user frames from the outermost one
(`_start`) up to and including the interpreter's outermost eval frame (`_PyEval_EvalFrame*`), or
all of them when there is none (the C program). perftop puts its Python frames in the place of
the eval frames and drops the interpreter's own frames between and above them (the Python
function's work, as py-spy counts it), so what lies beyond the outermost eval frame is not the
same list of frames in the two profilers; up to it, both show the same native callers. In
perftop's stacks the first Python frame stands for that eval frame and counts as one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import printable

CHAIN_FLAGS = ("-O2", "-fomit-frame-pointer")
# A sample "reaches main" when one of its native frames is one of these: Debian's python3.11
# is stripped of `main`'s name, so its frame is nameless there and Py_BytesMain (exported,
# main's only callee) stands for it.
MAIN_NAMES = frozenset({"main", "Py_BytesMain"})
EVAL_PREFIX = "_PyEval_EvalFrame"
PYTHON = "<python>"  # what a perftop Python frame becomes in a NativeStack
BROKEN_UNWIND = "[broken unwind]"  # perftop's marker for a walk that left the mappings


def build_chain(workdir: Path) -> Path:
    """tests/bpf/test_unwind.py's 8-deep chain program, -O2 -fomit-frame-pointer. Its one
    argument is how many seconds it spins."""
    from tests.bpf.test_unwind import CHAIN_C  # the test's program, not a copy of it

    source = workdir / "kestrel.c"
    source.write_text(CHAIN_C)
    binary = workdir / "kestrel"
    subprocess.run(["gcc", *CHAIN_FLAGS, "-o", str(binary), str(source)], check=True)
    return binary


@dataclass(frozen=True, slots=True)
class NativeStack:
    """One user stack of one process, outermost frame first: native symbols, each Python
    frame as PYTHON; kernel frames and walk-failure markers left out."""

    pid: int
    frames: tuple[str, ...]
    samples: int

    @property
    def depth(self) -> int:
        for index, name in enumerate(self.frames):
            if name == PYTHON or name.startswith(EVAL_PREFIX):
                return index + 1
        return len(self.frames)

    @property
    def frame_count(self) -> int:
        """Every native frame (what the kernel walked, with Python frames off)."""
        return len(self.frames)

    @property
    def reaches_main(self) -> bool:
        return any(name in MAIN_NAMES for name in self.frames)

    def line(self, limit: int = 16) -> str:
        """The stack as one printable line, outermost first (the middle cut when long)."""
        names = [printable(name, 40) for name in self.frames]
        if len(names) > limit:
            names = [
                *names[: limit // 2],
                f"... {len(names) - limit} more ...",
                *names[-limit // 2 :],
            ]
        return " ; ".join(names) or "(no user frames)"


def recorded_stacks(lines: Iterable[dict[str, Any]], pids: set[int]) -> list[NativeStack]:
    """The stacks of `pids` in perftop recording lines (perftop.formats.recording)."""
    stacks = []
    for line in lines:
        frames = line["frames"]
        # pid, tid, comm, frames, samples, period, and from format 4 the cgroup id
        for pid, _tid, _comm, indexes, samples, _period, *_cgroup in line["stacks"]:
            if pid not in pids:
                continue
            names = []
            for index in indexes:
                symbol, module, kernel, _reason, *python = frames[index]
                if kernel or symbol == BROKEN_UNWIND:
                    continue
                is_python = bool(python and python[0] is not None) or module == "[python]"
                names.append(PYTHON if is_python else symbol)
            stacks.append(NativeStack(pid, tuple(names), samples))
    return stacks


def sample_count(stacks: Sequence[NativeStack]) -> int:
    return sum(stack.samples for stack in stacks)


def median_over_samples(
    stacks: Sequence[NativeStack], value: Callable[[NativeStack], int]
) -> float:
    """The median of `value` over samples (each stack weighs its sample count)."""
    total = sample_count(stacks)
    if not total:
        return float("nan")
    middle = [(total - 1) // 2, total // 2]  # the one or two middle samples
    found = []
    seen = 0
    for stack in sorted(stacks, key=value):
        while middle and middle[0] < seen + stack.samples:
            found.append(value(stack))
            middle.pop(0)
        seen += stack.samples
    return sum(found) / len(found)


def median_depth(stacks: Sequence[NativeStack]) -> float:
    return median_over_samples(stacks, lambda stack: stack.depth)


def main_share(stacks: Sequence[NativeStack]) -> float:
    """Percent of the samples whose stack reaches main."""
    total = sample_count(stacks)
    reached = sum(stack.samples for stack in stacks if stack.reaches_main)
    return 100.0 * reached / total if total else float("nan")


def depth_histogram(stacks: Sequence[NativeStack]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for stack in stacks:
        counts[stack.depth] = counts.get(stack.depth, 0) + stack.samples
    return dict(sorted(counts.items()))


def hottest(stacks: Sequence[NativeStack], depth: int | None = None) -> NativeStack | None:
    """The stack with the most samples (of those `depth` deep, when given), the same frames
    added up across intervals."""
    merged: dict[tuple[int, tuple[str, ...]], int] = {}
    for stack in stacks:
        if depth is None or stack.depth == depth:
            key = (stack.pid, stack.frames)
            merged[key] = merged.get(key, 0) + stack.samples
    if not merged:
        return None
    (pid, frames), samples = max(merged.items(), key=lambda item: item[1])
    return NativeStack(pid, frames, samples)
