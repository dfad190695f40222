"""The user's choices (filters, sort, modes) and the small rules for changing them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from perftop.model.modes import StackMode
from perftop.model.stats import ViewFilter
from perftop.viewmodel.tables import (
    CGROUP_COLUMNS,
    DEFAULT_CGROUP_SORT,
    DEFAULT_FUNCTION_SORT,
    DEFAULT_PROCESS_SORT,
    FUNCTION_COLUMNS,
    PROCESS_COLUMNS,
    cycle_sort,
)

FREQUENCY_STEPS = (49, 99, 199, 499, 999)


@dataclass(frozen=True, slots=True)
class ViewOptions:
    """Everything the user chose about the view: the screen is a function of it and an interval."""

    process_sort: str = DEFAULT_PROCESS_SORT
    process_reverse: bool = False
    function_sort: str = DEFAULT_FUNCTION_SORT
    function_reverse: bool = False
    text_filter: str = ""
    pids: tuple[int, ...] = ()
    zoom_pid: int | None = None
    accumulated: bool = False
    paused: bool = False
    stack_mode: StackMode = StackMode.BOTH
    python_frames: bool = True  # CPython processes' Python frames walked
    # The processes pane shows cgroups as rows (`g`); Enter on one zooms into it.
    by_cgroup: bool = False
    cgroup_sort: str = DEFAULT_CGROUP_SORT
    cgroup_reverse: bool = False
    cgroups: tuple[str, ...] = ()  # the kernel's cgroup filter (`c`, --cgroup): paths
    zoom_cgroup: str | None = None
    by_module: bool = False  # the functions table by module (`d`, perf top's --sort dso)
    # Not choices, but state the header shows beside them:
    recording: bool = False  # --record is writing every interval
    folded_pid: bool = False  # --folded-pid: folded exports rooted at comm-PID, as batch writes
    replay_at: int | None = None  # the interval of the recording shown (1 the first)

    @property
    def filtered(self) -> bool:
        return bool(
            self.pids
            or self.text_filter
            or self.zoom_pid is not None
            or self.cgroups
            or self.zoom_cgroup is not None
        )

    @property
    def view_filter(self) -> ViewFilter:
        """The part of an interval the view shows (build_view's argument)."""
        return ViewFilter(
            pids=self.pids,
            text=self.text_filter,
            zoom_pid=self.zoom_pid,
            zoom_cgroup=self.zoom_cgroup,
        )

    def cgroup_sorted_by(self, column: str) -> ViewOptions:
        reverse = not self.cgroup_reverse if column == self.cgroup_sort else False
        return replace(self, cgroup_sort=column, cgroup_reverse=reverse)

    def cgroup_sort_cycled(self, step: int) -> ViewOptions:
        column = cycle_sort(CGROUP_COLUMNS, self.cgroup_sort, step)
        return replace(self, cgroup_sort=column, cgroup_reverse=False)

    def sorted_by(self, processes: bool, column: str) -> ViewOptions:
        """A click on a column title: sort by it, or reverse when it already sorts."""
        if processes:
            reverse = not self.process_reverse if column == self.process_sort else False
            return replace(self, process_sort=column, process_reverse=reverse)
        reverse = not self.function_reverse if column == self.function_sort else False
        return replace(self, function_sort=column, function_reverse=reverse)

    def sort_cycled(self, processes: bool, step: int) -> ViewOptions:
        """`>` and `<`: the next or previous column, hottest first."""
        if processes:
            column = cycle_sort(PROCESS_COLUMNS, self.process_sort, step)
            return replace(self, process_sort=column, process_reverse=False)
        column = cycle_sort(FUNCTION_COLUMNS, self.function_sort, step)
        return replace(self, function_sort=column, function_reverse=False)

    def sort_reversed(self, processes: bool) -> ViewOptions:
        if processes:
            return replace(self, process_reverse=not self.process_reverse)
        return replace(self, function_reverse=not self.function_reverse)

    def cleared(self) -> ViewOptions:
        return replace(self, text_filter="", pids=(), zoom_pid=None, cgroups=(), zoom_cgroup=None)

    def stepped_back(self) -> ViewOptions:
        """Esc, as in perf top: undo one level, the last narrowing first: the zoom, then the
        text filter, then the PID filter, then the cgroup filter."""
        if self.zoom_pid is not None:
            return replace(self, zoom_pid=None)
        if self.zoom_cgroup is not None:
            return replace(self, zoom_cgroup=None)
        if self.text_filter:
            return replace(self, text_filter="")
        if self.pids:
            return replace(self, pids=())
        return replace(self, cgroups=())


def next_frequency(current: int, step: int) -> int | None:
    """The next sampling frequency up (step 1) or down (step -1), None at either end."""
    if step > 0:
        higher = [hz for hz in FREQUENCY_STEPS if hz > current]
        return higher[0] if higher else None
    lower = [hz for hz in FREQUENCY_STEPS if hz < current]
    return lower[-1] if lower else None
