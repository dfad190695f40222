"""The processes and functions tables: one column table each, sorting, filtering, row keys."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from perftop.model.samples import ProcessInfo
from perftop.model.stats import FunctionStat, ProcessStat, Snapshot
from perftop.model.units import human_bytes as human_bytes  # re-exported
from perftop.profile.aggregate import FunctionKey, filter_stacks, function_key, with_aggregates
from perftop.sanitize import printable

Item = TypeVar("Item")
SortValue = float | str


@dataclass(frozen=True, slots=True)
class Column(Generic[Item]):
    """One column of a table: how it is titled, sorted and shown."""

    id: str
    title: str
    sort_key: Callable[[Item], SortValue]
    format: Callable[[Item], str]
    numeric: bool = True  # right-aligned
    descending: bool = True  # the first press sorts hottest (or largest) first
    width: int | None = None  # fixed width; None grows with the content


@dataclass(frozen=True, slots=True)
class TableRow:
    key: str
    cells: tuple[str, ...]
    dim: bool = False  # exited process, unresolved function


def _command(process: ProcessStat) -> str:
    name = printable(process.comm, 40)
    if process.info.kernel_thread:
        name = f"[{name}]"
    return f"{name} (exited)" if process.info.exited else name


PROCESS_COLUMNS: tuple[Column[ProcessStat], ...] = (
    Column("pid", "PID", lambda p: p.pid, lambda p: str(p.pid), descending=False, width=7),
    Column(
        "user",
        "USER",
        lambda p: p.info.user,
        lambda p: printable(p.info.user, 8) or "?",
        numeric=False,
        descending=False,
        width=8,
    ),
    Column("samples", "SAMPLES", lambda p: p.samples, lambda p: str(p.samples), width=7),
    Column("share", "SHARE%", lambda p: p.percent, lambda p: f"{p.percent:.1f}", width=6),
    Column(
        "cpu", "CPU%", lambda p: p.info.cpu_percent, lambda p: f"{p.info.cpu_percent:.1f}", width=6
    ),
    Column(
        "threads",
        "THR",
        lambda p: p.info.threads,
        lambda p: str(p.info.threads) if p.info.threads else "-",
        width=4,
    ),
    Column(
        "rss", "RSS", lambda p: p.info.rss_bytes, lambda p: human_bytes(p.info.rss_bytes), width=6
    ),
    Column("comm", "COMM", lambda p: p.comm, _command, numeric=False, descending=False),
    Column(
        "command",
        "COMMAND",
        lambda p: p.info.cmdline,
        lambda p: printable(p.info.cmdline, 200),
        numeric=False,
        descending=False,
    ),
)

FUNCTION_COLUMNS: tuple[Column[FunctionStat], ...] = (
    Column("self", "SELF%", lambda f: f.self_percent, lambda f: f"{f.self_percent:.1f}", width=6),
    Column(
        "total", "TOTAL%", lambda f: f.total_percent, lambda f: f"{f.total_percent:.1f}", width=6
    ),
    Column("samples", "SAMPLES", lambda f: f.self_samples, lambda f: str(f.self_samples), width=7),
    Column(
        "module",
        "MODULE",
        lambda f: f.module,
        lambda f: printable(f.module, 20),
        numeric=False,
        descending=False,
    ),
    # perf's mark: [k] kernel, [.] user space.
    Column(
        "mark",
        "",
        lambda f: int(f.kernel),
        lambda f: "[k]" if f.kernel else "[.]",
        numeric=False,
        width=3,
    ),
    Column(
        "symbol",
        "SYMBOL",
        lambda f: f.symbol,
        lambda f: printable(f.symbol, 160),
        numeric=False,
        descending=False,
    ),
)

DEFAULT_PROCESS_SORT = "samples"
DEFAULT_FUNCTION_SORT = "self"


def column_by_id(columns: Sequence[Column[Item]], column_id: str) -> Column[Item]:
    for column in columns:
        if column.id == column_id:
            return column
    raise KeyError(column_id)


def cycle_sort(columns: Sequence[Column[Item]], current: str, step: int = 1) -> str:
    """The column after (step 1) or before (step -1) `current`, wrapping like htop's > and <."""
    ids = [column.id for column in columns]
    index = ids.index(current) if current in ids else 0
    return ids[(index + step) % len(ids)]


def sorted_items(items: Iterable[Item], column: Column[Item], reverse: bool = False) -> list[Item]:
    """Items ordered by `column`; ties keep the snapshot's order (hottest first), which is
    stable between refreshes, so equal rows do not swap places every second."""
    return sorted(items, key=column.sort_key, reverse=column.descending != reverse)


# Filtering ----------------------------------------------------------------------------------


def filtered_snapshot(
    snapshot: Snapshot, pids: Sequence[int] = (), text_filter: str = ""
) -> Snapshot:
    """The snapshot restricted to `pids` (all when empty) and to the stacks whose comm or any
    symbol contains `text_filter`; processes and functions are recomputed from what is left, so
    shares are of the filtered samples."""
    if not pids and not text_filter:
        return snapshot
    stacks = filter_stacks(snapshot.stacks, pids=pids, text=text_filter)
    infos = {process.pid: process.info for process in snapshot.processes}
    kept = replace(snapshot, stacks=stacks, samples=sum(stack.samples for stack in stacks))
    return with_aggregates(kept, infos)


def with_quiet_processes(
    snapshot: Snapshot,
    pids: Sequence[int],
    gone: Collection[int] = (),
    names: Mapping[int, str] | None = None,
) -> Snapshot:
    """`snapshot` plus a row for each filtered PID that had no samples, so a watched process
    that sleeps or exits stays on screen, marked, instead of silently vanishing. `gone` are the
    PIDs known to have exited; `names` the last command seen for each PID."""
    present = {process.pid for process in snapshot.processes}
    quiet = tuple(
        ProcessStat(pid, (names or {}).get(pid, "?"), 0, 0.0, ProcessInfo(pid, exited=pid in gone))
        for pid in pids
        if pid not in present
    )
    return replace(snapshot, processes=snapshot.processes + quiet) if quiet else snapshot


def process_rows(
    snapshot: Snapshot,
    sort: str = DEFAULT_PROCESS_SORT,
    reverse: bool = False,
    text_filter: str = "",
    pids: Sequence[int] = (),
    limit: int | None = None,
) -> list[TableRow]:
    """Rows in display order; only the first `limit` when given."""
    view = filtered_snapshot(snapshot, pids, text_filter)
    column = column_by_id(PROCESS_COLUMNS, sort)
    return [
        TableRow(
            key=process_row_key(process.pid),
            cells=tuple(c.format(process) for c in PROCESS_COLUMNS),
            dim=process.info.exited,
        )
        for process in sorted_items(view.processes, column, reverse)[:limit]
    ]


def function_rows(
    snapshot: Snapshot,
    sort: str = DEFAULT_FUNCTION_SORT,
    reverse: bool = False,
    text_filter: str = "",
    pids: Sequence[int] = (),
    zoom_pid: int | None = None,
    limit: int | None = None,
) -> list[TableRow]:
    if zoom_pid is not None:
        pids = (zoom_pid,)
    view = filtered_snapshot(snapshot, pids, text_filter)
    unresolved = unresolved_functions(view)
    column = column_by_id(FUNCTION_COLUMNS, sort)
    return [
        TableRow(
            key=function_row_key(function),
            cells=tuple(c.format(function) for c in FUNCTION_COLUMNS),
            dim=(function.symbol, function.module, function.kernel) in unresolved,
        )
        for function in sorted_items(view.functions, column, reverse)[:limit]
    ]


_last_unresolved: list[tuple[Snapshot, frozenset[FunctionKey]]] = []


def unresolved_functions(view: Snapshot) -> frozenset[FunctionKey]:
    """The functions shown dim (no symbol). It walks every frame of every stack (200k frames
    at 10k stacks): the last view's answer is kept, so a sort key pressed between two
    intervals does not walk them again."""
    if _last_unresolved and _last_unresolved[0][0] is view:
        return _last_unresolved[0][1]
    found = frozenset(
        function_key(frame) for stack in view.stacks for frame in stack.frames if not frame.resolved
    )
    _last_unresolved[:] = [(view, found)]
    return found


def process_row_key(pid: int) -> str:
    return str(pid)


def function_row_key(function: FunctionStat) -> str:
    # JSON keeps the three parts apart whatever characters a hostile symbol holds.
    return json.dumps([function.symbol, function.module, function.kernel])


def function_key_from_row(row_key: str) -> FunctionKey:
    symbol, module, kernel = json.loads(row_key)
    return (str(symbol), str(module), bool(kernel))
