"""Pure aggregation: symbolized stacks -> processes, functions, call trees.

Nothing here touches the kernel or the screen, so all of it is tested over hand-built stacks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from perftop.model.samples import CgroupInfo, Frame, FunctionKey, ProcessInfo, StackSample
from perftop.model.stats import CgroupStat, FunctionStat, ProcessStat


def function_key(frame: Frame) -> FunctionKey:
    return frame[:3]


def percent(part: int | float, whole: int | float) -> float:
    return 100.0 * part / whole if whole else 0.0


def unknown_cgroup(cgroup_id: int) -> str:
    """The path shown for an id no walk could name (outside perftop's cgroup namespace, or made
    and removed between walks): not a path, since paths start with "/"."""
    return f"cgroup id {cgroup_id}"


def cgroup_info(cgroup_id: int, cgroups: Mapping[int, CgroupInfo]) -> CgroupInfo | None:
    """What is known of a stack's cgroup id; None for id 0 (not sampled: an old recording)."""
    if not cgroup_id:
        return None
    known = cgroups.get(cgroup_id)
    if known is None:
        path = unknown_cgroup(cgroup_id)
        return CgroupInfo(cgroup_id, path, path)
    return known


def process_stats(
    stacks: Iterable[StackSample],
    infos: Mapping[int, ProcessInfo],
    cgroups: Mapping[int, CgroupInfo] | None = None,
) -> tuple[ProcessStat, ...]:
    """Samples per thread group, hottest first; comm is the one seen most in the interval, and
    so is the cgroup (a process moved between cgroups mid-interval is in the one it ran in
    most). Without `cgroups` (cgroup v1 only: no names for any id) no process has one."""
    samples: dict[int, int] = defaultdict(int)
    comm_samples: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cgroup_samples: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for stack in stacks:
        samples[stack.pid] += stack.samples
        comm_samples[stack.pid][stack.comm] += stack.samples
        if stack.cgroup_id and cgroups is not None:
            cgroup_samples[stack.pid][stack.cgroup_id] += stack.samples
    total = sum(samples.values())
    rows = []
    for pid, count in samples.items():
        # The thread group leader's comm names the process; threads may have renamed themselves.
        comm = max(comm_samples[pid].items(), key=lambda item: (item[1], item[0]))[0]
        info = infos.get(pid) or ProcessInfo(pid=pid, exited=True)
        cgroup = None
        by_cgroup = cgroup_samples.get(pid)
        if by_cgroup:
            cgroup_id = max(by_cgroup.items(), key=lambda item: (item[1], item[0]))[0]
            cgroup = cgroup_info(cgroup_id, cgroups or {})  # not None: no samples counted
        rows.append(
            ProcessStat(
                pid,
                comm,
                count,
                percent(count, total),
                info,
                cgroup=None if cgroup is None else cgroup.path,
                container=None if cgroup is None else cgroup.container,
            )
        )
    rows.sort(key=lambda row: (-row.samples, row.pid))
    return tuple(rows)


def cgroup_stats(
    stacks: Iterable[StackSample],
    cgroups: Mapping[int, CgroupInfo],
    *,
    measured: bool = True,
) -> tuple[CgroupStat, ...]:
    """Samples per cgroup path (a path removed and made again has two ids: one row), hottest
    first: most samples, then most CPU by its own cpu.stat, then path, so the order is stable.
    With `measured`, a cgroup that has CPU figures but no samples gets a row of 0 samples too
    (its cpu.stat saw CPU the sampler did not: filtered, or too short-lived to be caught)."""
    samples: dict[str, int] = defaultdict(int)
    info_of: dict[str, CgroupInfo] = {}
    for stack in stacks:
        info = cgroup_info(stack.cgroup_id, cgroups)
        if info is None:
            continue
        samples[info.path] += stack.samples
        held = info_of.get(info.path)
        if held is None or (held.removed and not info.removed):
            info_of[info.path] = info  # the live one's figures, when a path has two ids
    if measured:
        for info in cgroups.values():
            if info.path not in info_of and info.usage_percent is not None and not info.removed:
                info_of[info.path] = info
    total = sum(samples.values())
    rows = [
        CgroupStat(
            path, info.name, samples.get(path, 0), percent(samples.get(path, 0), total), info
        )
        for path, info in info_of.items()
    ]
    rows.sort(key=lambda row: (-row.samples, -(row.info.usage_percent or 0.0), row.cgroup))
    return tuple(rows)


def function_stats(stacks: Sequence[StackSample]) -> tuple[FunctionStat, ...]:
    """Self samples go to the innermost frame; total samples to every distinct function in the
    chain, counted once per stack even when it recurses."""
    self_samples: dict[FunctionKey, int] = defaultdict(int)
    total_samples: dict[FunctionKey, int] = defaultdict(int)
    unresolved: set[FunctionKey] = set()  # the functions without a symbol, shown dim
    python: set[FunctionKey] = set()
    total = 0
    for stack in stacks:
        samples = stack.samples
        total += samples
        if not stack.frames:
            continue
        self_samples[stack.frames[-1][:3]] += samples
        # Recursion counts once per stack: by function, not by frame, since a Python frame
        # holds the line it was on (a recursive function on two lines is still one function).
        for key, frame in {frame[:3]: frame for frame in stack.frames}.items():
            total_samples[key] += samples
            if frame[3] is not None:
                unresolved.add(key)
            elif frame[4] is not None:
                python.add(key)
    rows = [
        FunctionStat(
            symbol=key[0],
            module=key[1],
            kernel=key[2],
            self_samples=self_samples.get(key, 0),
            self_percent=percent(self_samples.get(key, 0), total),
            total_samples=count,
            total_percent=percent(count, total),
            resolved=key not in unresolved,
            python=key in python,
        )
        for key, count in total_samples.items()
    ]
    rows.sort(key=lambda row: (-row.self_samples, -row.total_samples, row.symbol, row.module))
    return tuple(rows)


def module_stats(stacks: Sequence[StackSample]) -> tuple[FunctionStat, ...]:
    """By module, as `perf top --sort dso`: self samples to the innermost frame's module, total
    samples to every distinct module in the chain (once per stack). Each row is a FunctionStat
    whose symbol says how many functions of the module were sampled."""
    self_samples: dict[tuple[str, bool], int] = defaultdict(int)
    total_samples: dict[tuple[str, bool], int] = defaultdict(int)
    functions: dict[tuple[str, bool], set[str]] = defaultdict(set)
    python: set[tuple[str, bool]] = set()
    total = 0
    for stack in stacks:
        samples = stack.samples
        total += samples
        if not stack.frames:
            continue
        leaf = stack.frames[-1]
        self_samples[(leaf[1], leaf[2])] += samples
        for key in {(frame[1], frame[2]) for frame in stack.frames}:
            total_samples[key] += samples
        for frame in stack.frames:
            key = (frame[1], frame[2])
            functions[key].add(frame[0])
            if frame[4] is not None:
                python.add(key)
    rows = []
    for key, count in total_samples.items():
        named = len(functions[key])
        rows.append(
            FunctionStat(
                symbol=f"{named} function" + ("" if named == 1 else "s"),
                module=key[0],
                kernel=key[1],
                self_samples=self_samples.get(key, 0),
                self_percent=percent(self_samples.get(key, 0), total),
                total_samples=count,
                total_percent=percent(count, total),
                python=key in python,
            )
        )
    rows.sort(key=lambda row: (-row.self_samples, -row.total_samples, row.module))
    return tuple(rows)


@dataclass(slots=True)
class CallNode:
    """A node of the call tree: one function reached by one path from the root."""

    frame: Frame | None  # None for the root
    samples: int = 0  # inclusive
    self_samples: int = 0
    children: dict[FunctionKey, CallNode] = field(default_factory=dict)

    def sorted_children(self) -> list[CallNode]:
        """Hottest branch first; ties broken by name so the order is stable between refreshes."""
        return sorted(
            self.children.values(),
            key=lambda node: (-node.samples, node.frame.symbol if node.frame else ""),
        )


# The boxes of the flame graph's top row are processes, not functions; this module marks them.
PROCESS_MODULE = "[process]"


def process_frame(pid: int, comm: str) -> Frame:
    return Frame(f"{comm} [{pid}]", PROCESS_MODULE, False)


def call_tree(
    stacks: Iterable[StackSample],
    pid: int | None = None,
    function: FunctionKey | None = None,
    process_names: Mapping[int, str] | None = None,
) -> CallNode:
    """The stacks behind a process (`pid`) or a function, merged into a tree rooted at the
    outermost frame. For a function, only the stacks that pass through it count; they are kept
    whole, so both its callers and its callees show.

    With `process_names` (the flame graph) every stack hangs under a frame of its process,
    named from it by PID (else by the stack's comm), so the `main` of two programs never
    merges into one node."""
    root = CallNode(frame=None)
    process_nodes: dict[int, CallNode] = {}
    for stack in stacks:
        if pid is not None and stack.pid != pid:
            continue
        if function is not None and all(f[:3] != function for f in stack.frames):
            continue
        samples = stack.samples
        root.samples += samples
        node = root
        if process_names is not None:
            node = process_nodes.get(stack.pid) or _process_node(
                root, process_nodes, stack, process_names
            )
            node.samples += samples
        for frame in stack.frames:  # the hot loop of the call-stack pane: keys inlined
            children = node.children
            key = frame[:3]
            child = children.get(key)
            if child is None:
                child = children[key] = CallNode(frame)
            child.samples += samples
            node = child
        node.self_samples += samples
    return root


def caller_tree(
    stacks: Iterable[StackSample],
    pid: int | None = None,
    function: FunctionKey | None = None,
) -> CallNode:
    """The stacks turned upside down, as perf report's caller graph (`-G`): the callers of a
    function, or of every leaf.

    For a `function`, the root is the function itself (its inclusive samples, and its self
    samples: the stacks that end in it), its children its callers, theirs their callers, out
    to the outermost frame. A recursive function is counted once per stack, from its outermost
    call: the callers are how execution got into it; its recursion shows top-down. Without a
    function the root's children are the leaves (the functions the time was spent in) and the
    tree goes up from each. Built in one pass over the stacks, each chain walked once from the
    function outwards, like `call_tree`. The self samples are the function's (the root) or
    the leaves' (the root's children): callers have none, the chain ending there is not time
    spent in them."""
    root = CallNode(frame=None)
    for stack in stacks:
        if pid is not None and stack.pid != pid:
            continue
        frames = stack.frames
        samples = stack.samples
        if function is None:
            end = len(frames)
        else:
            end = next((i for i, frame in enumerate(frames) if frame[:3] == function), -1)
            if end < 0:
                continue
            if root.frame is None:
                root.frame = frames[end]
            if frames[-1][:3] == function:
                root.self_samples += samples
        root.samples += samples
        if not end:
            continue
        node = root
        for frame in frames[end - 1 :: -1]:  # the hot loop: keys inlined, as in call_tree
            children = node.children
            key = frame[:3]
            child = children.get(key)
            if child is None:
                child = children[key] = CallNode(frame)
            child.samples += samples
            node = child
        if function is None:  # the leaf: the time was spent in it
            root.children[frames[-1][:3]].self_samples += samples
    return root


def _process_node(
    root: CallNode,
    process_nodes: dict[int, CallNode],
    stack: StackSample,
    process_names: Mapping[int, str],
) -> CallNode:
    top = process_frame(stack.pid, process_names.get(stack.pid, stack.comm))
    node = root.children.get(top[:3])
    if node is None:
        node = root.children[top[:3]] = CallNode(frame=top)
    process_nodes[stack.pid] = node
    return node


def folded_lines(stacks: Iterable[StackSample]) -> list[str]:
    """`comm;outermost;...;innermost count` lines, the input of flamegraph.pl, inferno and
    speedscope; identical chains are merged. Names must already be made safe by the caller."""
    merged: dict[tuple[str, ...], int] = defaultdict(int)
    for stack in stacks:
        path = (stack.comm, *(f.symbol + ("_[k]" if f.kernel else "") for f in stack.frames))
        merged[path] += stack.samples
    return [f"{';'.join(path)} {count}" for path, count in sorted(merged.items())]


StackKey = tuple[int, int, str, tuple[Frame, ...], int]


class StackTotals:
    """Samples and periods summed per (pid, tid, comm, frames, cgroup id): the one stack merge,
    used by the
    drain (two stack ids can symbolize alike), the decaying accumulation and whole-run exports.
    Totals are floats for the decaying view, whose weights fade by a factor each interval."""

    __slots__ = ("_totals",)

    def __init__(self) -> None:
        self._totals: dict[StackKey, list[float]] = {}

    def __len__(self) -> int:
        return len(self._totals)

    def add(
        self,
        pid: int,
        tid: int,
        comm: str,
        frames: tuple[Frame, ...],
        samples: int,
        period: int,
        cgroup_id: int = 0,
    ) -> None:
        key = (pid, tid, comm, frames, cgroup_id)
        entry = self._totals.get(key)
        if entry is None:
            self._totals[key] = [samples, period]
        else:
            entry[0] += samples
            entry[1] += period

    def add_stacks(self, stacks: Iterable[StackSample]) -> StackTotals:
        totals = self._totals
        for stack in stacks:  # add() inlined: this is once per stack per interval
            key = (stack.pid, stack.tid, stack.comm, stack.frames, stack.cgroup_id)
            entry = totals.get(key)
            if entry is None:
                totals[key] = [stack.samples, stack.period]
            else:
                entry[0] += stack.samples
                entry[1] += stack.period
        return self

    def fade(self, keep: float) -> None:
        """Multiply every weight by `keep`; a chain that falls below one sample is dropped."""
        totals = self._totals
        faded = []
        for key, entry in totals.items():
            entry[0] *= keep
            entry[1] *= keep
            if entry[0] < 1.0:
                faded.append(key)
        for key in faded:
            del totals[key]

    def stacks(self) -> tuple[StackSample, ...]:
        """The merged stacks, weights rounded to whole samples."""
        return tuple(
            StackSample(pid, tid, comm, frames, round(samples), round(period), cgroup_id)
            for (pid, tid, comm, frames, cgroup_id), (samples, period) in self._totals.items()
        )


def merge_stacks(stacks: Iterable[StackSample]) -> tuple[StackSample, ...]:
    """Merge samples that share thread and chain (after symbolization two stack ids can meet)."""
    return StackTotals().add_stacks(stacks).stacks()


def filter_stacks(
    stacks: Sequence[StackSample],
    pids: Sequence[int] = (),
    text: str = "",
    cgroup_ids: Collection[int] | None = None,
) -> tuple[StackSample, ...]:
    """Keep the stacks of `pids` (all when empty), of `cgroup_ids` (all when None), whose comm
    or any symbol contains `text`."""
    needle = text.casefold()
    wanted = set(pids)
    kept = []
    for stack in stacks:
        if wanted and stack.pid not in wanted:
            continue
        if cgroup_ids is not None and stack.cgroup_id not in cgroup_ids:
            continue
        if (
            needle
            and needle not in stack.comm.casefold()
            and not any(needle in frame.symbol.casefold() for frame in stack.frames)
        ):
            continue
        kept.append(stack)
    return tuple(kept)
