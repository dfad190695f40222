"""The processes and functions tables: one column table each, sorting, filtering, row keys."""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from perftop.model.samples import FrameKind, FunctionKey, ProcessInfo
from perftop.model.stats import CgroupStat, FunctionStat, ProcessStat, View
from perftop.model.units import human_bytes as human_bytes  # re-exported
from perftop.profile.aggregate import module_stats
from perftop.sanitize import printable
from perftop.viewmodel.layout import Shrink

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
    # How it gives up room when the table is wider than its pane (perftop.viewmodel.layout).
    shrinks: tuple[Shrink, ...] = ()
    # How a cell is cut to fewer cells; None: at its end, with an ellipsis.
    cut: Callable[[str, int], str] | None = None


@dataclass(frozen=True, slots=True)
class TableRow:
    key: Hashable  # what the row is of, stable across refreshes (a PID, a function's key)
    cells: tuple[str, ...]
    dim: bool = False  # exited process, unresolved function


def module_text(module: str, python: bool, limit: int) -> str:
    """A module as the tables show it, at most `limit` cells. A Python frame's module is its
    code's file, a path whose news is at the end: it keeps its last whole components
    ("…/package/work.py", or "…src/package/work.py" when the slash would not fit), where a
    binary's name is cut at the end like a symbol."""
    if not python:
        return printable(module, limit)
    safe = printable(module)
    if len(safe) <= limit:
        return safe
    start = len(safe) - (limit - 1)
    tail = safe[start:]
    if safe[start - 1] != "/":  # the tail begins inside a component: start at the next one
        directory = tail.find("/")
        if 0 <= directory < len(tail) - 1:
            tail = tail[directory:]
    return "…" + tail


def cut_module(cell: str, width: int) -> str:
    """A module cell cut to `width`: a path (a Python frame's file) keeps its end."""
    return module_text(cell, "/" in cell, width)


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
        shrinks=(Shrink(5, 0),),
    ),
    Column(
        "samples",
        "SAMPLES",
        lambda p: p.samples,
        lambda p: str(p.samples),
        width=7,
        shrinks=(Shrink(3, 0),),
    ),
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
        shrinks=(Shrink(2, 0),),
    ),
    Column(
        "rss",
        "RSS",
        lambda p: p.info.rss_bytes,
        lambda p: human_bytes(p.info.rss_bytes),
        width=6,
        shrinks=(Shrink(4, 0),),
    ),
    Column(
        "comm",
        "COMM",
        lambda p: p.comm,
        _command,
        numeric=False,
        descending=False,
        # A kernel thread's name may run past the kernel's 15 characters ([kworker/u8:1-…]):
        # cut to 18 first, it no longer takes COMMAND's room.
        shrinks=(Shrink(1, 18), Shrink(7, 10)),
    ),
    # The command line is cut to ~20 cells first, then the low-value columns go, then it is
    # cut further: at 80 columns it was one cell wide beside all of them.
    Column(
        "command",
        "COMMAND",
        lambda p: p.info.cmdline,
        lambda p: printable(p.info.cmdline, 200),
        numeric=False,
        descending=False,
        shrinks=(Shrink(1, 20), Shrink(6, 10), Shrink(8, 0)),
    ),
)

MODULE_WIDTH = 20
# The mark column sorts native, then Python, then kernel: the first press (descending) puts the
# kernel's functions first, as when there were two kinds.
KIND_ORDER = {FrameKind.NATIVE: 0, FrameKind.PYTHON: 1, FrameKind.KERNEL: 2}

FUNCTION_COLUMNS: tuple[Column[FunctionStat], ...] = (
    Column("self", "SELF%", lambda f: f.self_percent, lambda f: f"{f.self_percent:.1f}", width=6),
    Column(
        "total", "TOTAL%", lambda f: f.total_percent, lambda f: f"{f.total_percent:.1f}", width=6
    ),
    Column(
        "samples",
        "SAMPLES",
        lambda f: f.self_samples,
        lambda f: str(f.self_samples),
        width=7,
        shrinks=(Shrink(3, 0),),
    ),
    Column(
        "module",
        "MODULE",
        lambda f: f.module,
        lambda f: module_text(f.module, f.python, MODULE_WIDTH),
        numeric=False,
        descending=False,
        shrinks=(Shrink(2, 14), Shrink(5, 8)),
        cut=cut_module,
    ),
    # perf's mark: [k] kernel, [.] user space; and [py] a Python function. Its width grows
    # with the marks shown, so a screen without Python functions keeps perf's three cells.
    Column("mark", "", lambda f: KIND_ORDER[f.kind], lambda f: f.kind.mark, numeric=False),
    Column(
        "symbol",
        "SYMBOL",
        lambda f: f.symbol,
        lambda f: printable(f.symbol, 160),
        numeric=False,
        descending=False,
        # What the table is for: only a very long symbol is cut before MODULE is.
        shrinks=(Shrink(1, 60), Shrink(4, 30), Shrink(6, 16)),
    ),
)


def _usage(row: CgroupStat) -> str:
    usage = row.info.usage_percent
    return "-" if usage is None else f"{usage:.1f}"


def _throttled(row: CgroupStat) -> str:
    throttled = row.info.throttled_usec
    return "-" if throttled is None else f"{throttled / 1000:.0f}ms"


def _quota(row: CgroupStat) -> str:
    quota = row.info.quota
    return "max" if quota is None else f"{quota:.2f}"


def _cgroup_label(row: CgroupStat) -> str:
    # A cgroup that is no unit, container or pod is named by its path: shown once, in CGROUP.
    return "-" if row.name == row.cgroup else printable(row.name, 20)


def _cgroup_path(row: CgroupStat) -> str:
    path = printable(row.cgroup, 200)
    return f"{path} (removed)" if row.info.removed else path


# The batch output's per-cgroup figures, as rows: its share of the samples beside its own
# cpu.stat usage (of one CPU, like CPU%), throttling in the interval and cpu.max quota in CPUs.
CGROUP_COLUMNS: tuple[Column[CgroupStat], ...] = (
    Column(
        "samples",
        "SAMPLES",
        lambda c: c.samples,
        lambda c: str(c.samples),
        width=7,
        shrinks=(Shrink(5, 0),),
    ),
    Column("share", "SHARE%", lambda c: c.percent, lambda c: f"{c.percent:.1f}", width=6),
    Column("cpu", "CPU%", lambda c: c.info.usage_percent or 0.0, _usage, width=6),
    Column(
        "throttled",
        "THROTTL",
        lambda c: c.info.throttled_usec or 0,
        _throttled,
        width=7,
        shrinks=(Shrink(3, 0),),
    ),
    Column(
        "quota",
        "QUOTA",
        lambda c: c.info.quota or 0.0,
        _quota,
        width=5,
        shrinks=(Shrink(2, 0),),
    ),
    Column(
        "name",
        "NAME",
        lambda c: c.name,
        _cgroup_label,
        numeric=False,
        descending=False,
        width=20,
        shrinks=(Shrink(4, 12),),
    ),
    Column(
        "cgroup",
        "CGROUP",
        lambda c: c.cgroup,
        _cgroup_path,
        numeric=False,
        descending=False,
        shrinks=(Shrink(1, 20), Shrink(6, 10)),
    ),
)

DEFAULT_PROCESS_SORT = "samples"
DEFAULT_FUNCTION_SORT = "self"
DEFAULT_CGROUP_SORT = "samples"


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


# Rows --------------------------------------------------------------------------------------


def with_quiet_processes(
    view: View,
    pids: Sequence[int],
    gone: Collection[int] = (),
    names: Mapping[int, str] | None = None,
) -> View:
    """`view` plus a row for each filtered PID that had no samples, so a watched process that
    sleeps or exits stays on screen, marked, instead of silently vanishing. `gone` are the
    PIDs known to have exited; `names` the last command seen for each PID."""
    present = {process.pid for process in view.processes}
    known = view.interval.processes
    quiet = tuple(
        _quiet_process(pid, known.get(pid), pid in gone, (names or {}).get(pid))
        for pid in pids
        if pid not in present
    )
    return replace(view, processes=view.processes + quiet) if quiet else view


def _quiet_process(
    pid: int, known: ProcessInfo | None, gone: bool, name: str | None
) -> ProcessStat:
    """A watched PID with no samples in view. A live one whose stacks a text filter hides
    keeps what psutil said of it (user, CPU%, command): drawn with nothing (`?`, `-`) it read
    as an exited process."""
    if gone or known is None:
        return ProcessStat(pid, name or "?", 0, 0.0, ProcessInfo(pid, exited=gone))
    return ProcessStat(pid, name or known.name or "?", 0, 0.0, known)


def process_rows(
    view: View,
    sort: str = DEFAULT_PROCESS_SORT,
    reverse: bool = False,
    limit: int | None = None,
) -> list[TableRow]:
    """Rows in display order; only the first `limit` when given. Exited processes of one
    command are one row, keyed by ("exited", command), its PID cell the count (×24)."""
    column = column_by_id(PROCESS_COLUMNS, sort)
    rolled = _rolled_up_exited(view.processes)
    counts = {id(process): count for process, count in rolled}
    rows = []
    for process in sorted_items((process for process, _ in rolled), column, reverse)[:limit]:
        cells = tuple(c.format(process) for c in PROCESS_COLUMNS)
        count = counts[id(process)]
        key: Hashable = process.pid
        if count > 1:
            key = ("exited", process.comm)
            rolled_cells = {
                "pid": f"×{count}",
                "comm": f"{printable(process.comm, 40)} ({count} exited)",
            }
            cells = tuple(
                rolled_cells.get(column.id, cell)
                for column, cell in zip(PROCESS_COLUMNS, cells, strict=True)
            )
        rows.append(TableRow(key=key, cells=cells, dim=process.info.exited))
    return rows


def cgroup_rows(
    view: View,
    sort: str = DEFAULT_CGROUP_SORT,
    reverse: bool = False,
    limit: int | None = None,
) -> list[TableRow]:
    """One row per cgroup path, keyed by it; a removed cgroup's last rows are dim."""
    column = column_by_id(CGROUP_COLUMNS, sort)
    return [
        TableRow(
            key=row.cgroup,
            cells=tuple(c.format(row) for c in CGROUP_COLUMNS),
            dim=row.info.removed,
        )
        for row in sorted_items(view.cgroups, column, reverse)[:limit]
    ]


def cgroup_name(view: View | None, path: str | None) -> str:
    """The readable name of a cgroup row of the view ("" when not in it), printable."""
    if view is None or path is None:
        return ""
    return next((printable(row.name, 40) for row in view.cgroups if row.cgroup == path), "")


def function_rows(
    view: View,
    sort: str = DEFAULT_FUNCTION_SORT,
    reverse: bool = False,
    limit: int | None = None,
) -> list[TableRow]:
    column = column_by_id(FUNCTION_COLUMNS, sort)
    return [
        TableRow(
            key=function_key_of(function),
            cells=tuple(c.format(function) for c in FUNCTION_COLUMNS),
            dim=not function.resolved,
        )
        for function in sorted_items(view.functions, column, reverse)[:limit]
    ]


@dataclass(frozen=True, slots=True)
class ModuleKey:
    """The row key of a module in the by-module view (not a FunctionKey: no stacks follow)."""

    module: str
    kernel: bool


def module_rows(
    view: View,
    sort: str = DEFAULT_FUNCTION_SORT,
    reverse: bool = False,
    limit: int | None = None,
) -> list[TableRow]:
    """The functions table by module (`d`, perf top's --sort dso)."""
    column = column_by_id(FUNCTION_COLUMNS, sort)
    return [
        TableRow(
            key=ModuleKey(module.module, module.kernel),
            cells=tuple(c.format(module) for c in FUNCTION_COLUMNS),
        )
        for module in sorted_items(module_stats(view.stacks), column, reverse)[:limit]
    ]


def _rolled_up_exited(processes: Sequence[ProcessStat]) -> list[tuple[ProcessStat, int]]:
    """Exited processes of one command as one row (a fork loop was 24 exited rows of 0.5%):
    (the process, or the sum of its command's exited ones, and how many it stands for), in
    the order given (a roll-up where its first process was), so ties keep their places."""
    exited: dict[str, list[ProcessStat]] = {}
    for process in processes:
        if process.info.exited:
            exited.setdefault(process.comm, []).append(process)
    result: list[tuple[ProcessStat, int]] = []
    for process in processes:
        group = exited.get(process.comm) if process.info.exited else None
        if group is None or len(group) == 1:
            result.append((process, 1))
        elif group[0] is process:
            first = min(member.pid for member in group)
            rolled = ProcessStat(
                first,
                process.comm,
                sum(member.samples for member in group),
                sum(member.percent for member in group),
                ProcessInfo(first, exited=True),
            )
            result.append((rolled, len(group)))
    return result


def function_key_of(function: FunctionStat) -> FunctionKey:
    return (function.symbol, function.module, function.kernel)


def function_kind(view: View, key: FunctionKey) -> FrameKind:
    """What kind of function `key` is: a key alone cannot tell a Python function (its module a
    file) from a native one, the view's functions can."""
    for function in view.functions:
        if function_key_of(function) == key:
            return function.kind
    return FrameKind.KERNEL if key[2] else FrameKind.NATIVE
