"""The main screen's content: header, processes, functions, call stacks and the cost bar.

It draws what it is given (the latest interval, the view of it and the user's options) and
keeps the call-stack pane on the selection of the table last in use; the app owns the options
and the source.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.dom import NoScreen

from perftop.model.samples import FrameKind, FunctionKey, Interval
from perftop.model.stats import View
from perftop.sanitize import printable
from perftop.ui.widgets.cgroup_table import CgroupTable
from perftop.ui.widgets.cost_bar import CostBar
from perftop.ui.widgets.function_table import FunctionTable
from perftop.ui.widgets.header import HeaderBar
from perftop.ui.widgets.keyed_table import KeyedTable
from perftop.ui.widgets.process_table import ProcessTable
from perftop.ui.widgets.scrolling import TitledScrollView
from perftop.ui.widgets.stack_tree import StackTree
from perftop.viewmodel import (
    StackNode,
    TableRow,
    ViewOptions,
    cgroup_name,
    cgroup_rows,
    cgroup_stack_tree,
    function_kind,
    function_rows,
    module_rows,
    process_rows,
    stack_tree,
    with_quiet_processes,
)
from perftop.viewmodel.layout import TALL_LINES, process_pane_height


@dataclass(frozen=True, slots=True)
class ProcessSubject:
    pid: int


@dataclass(frozen=True, slots=True)
class FunctionSubject:
    key: FunctionKey


@dataclass(frozen=True, slots=True)
class CgroupSubject:
    cgroup: str


Subject = ProcessSubject | FunctionSubject | CgroupSubject | None


# Rows beyond these are never looked at; each row kept is formatted and compared every refresh.
MAX_PROCESS_ROWS = 1000
MAX_FUNCTION_ROWS = 200
MAX_CGROUP_ROWS = 500
# Above this many stacks in view the call-stack tree is built in a thread (tens of ms and more).
THREADED_TREE_STACKS = 2000


def stack_pane_title(model: StackNode | None, subject: Subject, callers: bool) -> str:
    """What the call-stack pane's title says: which way its tree goes, and of what."""
    if not callers:
        return "Call stacks" if model is None else f"Call stacks: {printable(model.symbol)}"
    if model is None:
        return "Callers (bottom-up)"
    if isinstance(subject, FunctionSubject):
        return f"Callers (bottom-up) of {printable(model.symbol)}"
    return f"Callers (bottom-up): {printable(model.symbol)}"


class Dashboard(Vertical):
    def __init__(self, *, live: bool) -> None:
        super().__init__(id="dashboard")
        self.live = live
        self.header_bar = HeaderBar(id="header")
        self.process_table = ProcessTable()
        # In the processes pane's place while `g` groups by cgroup.
        self.cgroup_table = CgroupTable()
        self.cgroup_table.display = False
        self.function_table = FunctionTable()
        self.stack_tree = StackTree()
        self.cost_bar = CostBar(id="cost")
        self.active_table = "processes"  # the table the sort keys and the stack pane follow
        self._view: View | None = None
        self._subject: Subject = None
        self._zoom_pid: int | None = None
        # The call-stack pane top-down (callees), or bottom-up (callers: `i`).
        self.callers = False
        self._stacks_shown_for: tuple[View | None, Subject, int | None, bool] | None = None
        self._stack_title = "Call stacks"
        # The newest tree to build beside the event loop, taken by the worker that builds it.
        self._stack_request: tuple[View, Subject, int | None, bool] | None = None
        self._stack_request_lock = threading.Lock()
        self._names: dict[int, str] = {}  # last command seen of each filtered PID
        self._rows_for: dict[str, tuple[View, tuple[object, ...], list[TableRow]]] = {}
        self._fitted_height: tuple[int, int] | None = None  # (processes, cgroups) panes

    def _set_title(self, pane: TitledScrollView, title: str) -> None:
        """Set a pane's own title; the pane shows it (literally, never as markup: a comm or a
        symbol may hold "[b]") only when it says something new, since setting a border title
        repaints every line of the pane (35 at 120x40), and the tables get theirs every
        interval."""
        pane.set_pane_title(title)

    def compose(self) -> ComposeResult:
        yield self.header_bar
        with Container(id="body"):
            with Vertical(id="tables"):
                yield self.process_table
                yield self.cgroup_table
                yield self.function_table
            yield self.stack_tree
        yield self.cost_bar

    def show(
        self, latest: Interval | None, view: View | None, options: ViewOptions, *, ended: bool
    ) -> None:
        """Draw `view` (of the interval or of the accumulation) as `options` say; `latest`, the
        interval as sampled, feeds the header and the cost bar."""
        if view is not None:
            self._view = view
            self._show_tables(view, options)
        self.header_bar.show(
            latest,
            options,
            live=self.live,
            ended=ended,
            zoom_comm=self._comm_of(options.zoom_pid),
            zoom_cgroup_name=cgroup_name(self._view, options.zoom_cgroup),
        )
        self.cost_bar.show(latest)
        self._fit_heights()
        if view is not None:
            self._subject = self._selected_subject()
            self._show_stacks(options.zoom_pid)

    def _show_tables(self, view: View, options: ViewOptions) -> None:
        processes, functions = self.process_table, self.function_table
        processes.show_sort(options.process_sort, options.process_reverse)
        watched = self._with_watched_processes(view, options.pids)
        sort, reverse = options.process_sort, options.process_reverse
        processes.show_rows(
            self._rows(
                "processes",
                watched,
                (sort, reverse),
                lambda: process_rows(watched, sort, reverse, limit=MAX_PROCESS_ROWS),
            )
        )
        functions.show_sort(options.function_sort, options.function_reverse)
        sort, reverse = options.function_sort, options.function_reverse
        rows = module_rows if options.by_module else function_rows
        functions.show_rows(
            self._rows(
                "functions",
                view,
                (sort, reverse, options.by_module),
                lambda: rows(view, sort, reverse, limit=MAX_FUNCTION_ROWS),
            )
        )
        self._set_title(
            processes,
            f"Processes ({processes.row_count})"
            if options.zoom_cgroup is None
            else f"Processes of cgroup {printable(options.zoom_cgroup, 60)} "
            f"({processes.row_count})",
        )
        self._show_cgroups(view, options)
        zoom = options.zoom_pid
        noun = "Modules" if options.by_module else "Functions"
        self._set_title(
            functions,
            noun if zoom is None else f"{noun} of PID {zoom} {printable(self._comm_of(zoom), 16)}",
        )
        self._zoom_pid = zoom

    # Room ------------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._fit_heights()
        self._show_stack_title()

    def _fit_heights(self) -> None:
        """The processes (or cgroups) pane as tall as its rows, capped so the functions keep
        the room (perftop.viewmodel.layout); the functions pane takes what is left."""
        try:
            screen_lines = self.screen.size.height
        except NoScreen:  # an interval that arrives as the app leaves: nothing to fit
            return
        body = self.size.height - self.header_bar.lines - 1  # the cost bar's line
        heights = (
            process_pane_height(self.process_table.row_count, body, screen_lines),
            process_pane_height(self.cgroup_table.row_count, body, screen_lines),
        )
        if heights != self._fitted_height and self.size.height:
            self._fitted_height = heights
            self.process_table.styles.height = heights[0]
            self.cgroup_table.styles.height = heights[1]

    @property
    def stacks_collapsed(self) -> bool:
        """Below TALL_LINES lines, stacked, the call-stack pane is its title line until it is
        focused (perftop.tcss)."""
        try:
            screen = self.screen
        except NoScreen:  # the app is leaving
            return False
        return (
            screen.size.height < TALL_LINES
            and screen.has_class("-narrow")
            and screen.focused is not self.stack_tree
        )

    def _show_stack_title(self) -> None:
        hint = "  · Tab to open" if self.stacks_collapsed else ""
        self._set_title(self.stack_tree, self._stack_title + hint)

    def on_descendant_blur(self, event: object) -> None:
        self._show_stack_title()

    def group_by_cgroup(self, on: bool) -> None:
        """The cgroups pane in the processes pane's place (`g`), or the processes back."""
        processes, cgroups = self.process_table, self.cgroup_table
        if cgroups.display == on:
            return
        had_focus = self.screen.focused in (processes, cgroups)
        processes.display, cgroups.display = not on, on
        if had_focus:
            (cgroups if on else processes).focus()

    def _show_cgroups(self, view: View, options: ViewOptions) -> None:
        table = self.cgroup_table
        if not table.display:
            return
        table.show_sort(options.cgroup_sort, options.cgroup_reverse)
        sort, reverse = options.cgroup_sort, options.cgroup_reverse
        table.show_rows(
            self._rows(
                "cgroups",
                view,
                (sort, reverse),
                lambda: cgroup_rows(view, sort, reverse, limit=MAX_CGROUP_ROWS),
            )
        )
        # Said once, in the title, when there can be no rows: cgroup v1 only.
        unavailable = view.cgroups_unavailable
        self._set_title(
            table,
            f"Cgroups: {printable(unavailable, 80)}"
            if unavailable
            else f"Cgroups ({table.row_count})",
        )

    def _rows(
        self,
        table: str,
        view: View,
        choices: tuple[object, ...],
        build: Callable[[], list[TableRow]],
    ) -> list[TableRow]:
        """A table's rows, built again only for another view or other choices: a key that
        changes one table (a sort, a reverse) leaves the other table's rows as they were."""
        held = self._rows_for.get(table)
        if held is not None and held[0] is view and held[1] == choices:
            return held[2]
        rows = build()
        self._rows_for[table] = (view, choices, rows)
        return rows

    def _with_watched_processes(self, view: View, pids: tuple[int, ...]) -> View:
        """Keep every PID of the filter on screen, marked exited once it is gone."""
        if not pids:
            return view
        import psutil  # only with a pid filter: not before the first screen

        self._names.update((p.pid, p.comm) for p in view.processes if p.pid in pids)
        self._names = {pid: name for pid, name in self._names.items() if pid in pids}
        # psutil only knows about this machine: a replay cannot tell gone from idle.
        gone = {pid for pid in pids if self.live and not psutil.pid_exists(pid)}
        return with_quiet_processes(view, pids, gone, self._names)

    def _comm_of(self, pid: int | None) -> str:
        if pid is None or self._view is None:
            return ""
        return next((p.comm for p in self._view.processes if p.pid == pid), "")

    # The call-stack pane follows the selection ----------------------------------------------

    def _selected_subject(self) -> Subject:
        if self.active_table == "cgroups":
            cgroup = self.cgroup_table.selected_cgroup
            return None if cgroup is None else CgroupSubject(cgroup)
        if self.active_table == "processes":
            pid = self.process_table.selected_pid
            return None if pid is None else ProcessSubject(pid)
        key = self.function_table.selected_function
        return None if key is None else FunctionSubject(key)

    def show_callers(self, callers: bool) -> None:
        """The call-stack pane bottom-up (the callers of the selection) or top-down."""
        if callers != self.callers:
            self.callers = callers
            self._show_stacks(self._zoom_pid)

    def _show_stacks(self, zoom_pid: int | None) -> None:
        # The tree depends on the view, the subject, the zoom and the direction alone: a sort
        # change or a repaint of the same interval must not rebuild it (with 10k stacks that
        # took seconds of the UI thread, and a keypress waited behind it).
        view, subject, callers = self._view, self._subject, self.callers
        if self._stacks_wanted(view, subject, zoom_pid, callers):
            return
        self._stacks_shown_for = (view, subject, zoom_pid, callers)
        if view is not None and len(view.stacks) > THREADED_TREE_STACKS:
            # Big: built beside the event loop, so keys keep being answered meanwhile.
            with self._stack_request_lock:
                self._stack_request = (view, subject, zoom_pid, callers)
            self._build_stack_model()
            return
        model = self._stack_model(view, subject, zoom_pid, callers)
        self._apply_stack_model(model, subject, callers)

    def _stacks_wanted(
        self, view: View | None, subject: Subject, zoom: int | None, callers: bool
    ) -> bool:
        """True when the pane shows, or is being built for, exactly this."""
        shown_for = self._stacks_shown_for
        return (
            shown_for is not None
            and shown_for[0] is view  # the object itself is held: no reused id()
            and shown_for[1:] == (subject, zoom, callers)
        )

    # The request is not the worker's argument: a finished Worker stays in a reference cycle
    # with its Task until a full collection, and its arguments with it. Under 20 kHz that kept
    # every interval's Interval (~37k StackSamples) alive for ~10 s and made each full
    # collection walk and free ~150k objects with the GIL held: 280-720 ms. A description, or
    # Textual would repr() the worker's arguments for one.
    @work(thread=True, exclusive=True, group="stack-model", description="call-stack tree")
    def _build_stack_model(self) -> None:
        with self._stack_request_lock:
            request, self._stack_request = self._stack_request, None
        if request is None:  # an earlier worker, still running, took the newest one
            return
        view, subject, zoom_pid, callers = request
        model = self._stack_model(view, subject, zoom_pid, callers)

        def apply() -> None:
            if self._stacks_wanted(view, subject, zoom_pid, callers):  # not overtaken meanwhile
                self._apply_stack_model(model, subject, callers)

        with contextlib.suppress(RuntimeError):  # the app is leaving
            self.app.call_from_thread(apply)

    def _apply_stack_model(self, model: StackNode | None, subject: Subject, callers: bool) -> None:
        self._stack_title = stack_pane_title(model, subject, callers)
        self._show_stack_title()
        # The direction is part of what is shown: what was unfolded top-down means nothing
        # bottom-up, and back again the pane starts afresh.
        self.stack_tree.show_stacks(model, (subject, callers))

    @staticmethod
    def _stack_model(
        view: View | None, subject: Subject, zoom_pid: int | None, callers: bool
    ) -> StackNode | None:
        if view is None or subject is None:
            return None
        if isinstance(subject, ProcessSubject):
            comm = next((p.comm for p in view.processes if p.pid == subject.pid), "")
            title = f"PID {subject.pid} {printable(comm, 24)}"
            return stack_tree(view.unzoomed_stacks, title, pid=subject.pid, callers=callers)
        if isinstance(subject, CgroupSubject):
            name = cgroup_name(view, subject.cgroup) or printable(subject.cgroup, 40)
            return cgroup_stack_tree(view, subject.cgroup, f"cgroup {name}", callers=callers)
        # The view's stacks are the zoomed process's already when zoomed.
        symbol, module, _ = subject.key
        kind = function_kind(view, subject.key)
        title = f"{kind.mark} {printable(symbol, 60)}"
        if kind is not FrameKind.PYTHON:  # a Python function's symbol names its file already
            title += f"  {printable(module, 24)}"
        return stack_tree(view.stacks, title, function=subject.key, callers=callers)

    @on(KeyedTable.SelectionChanged)
    def _selection_changed(self, message: KeyedTable.SelectionChanged) -> None:
        if message.table.id == self.active_table:
            self._follow_selection()

    def on_descendant_focus(self, event: object) -> None:
        self._show_stack_title()
        focused = self.screen.focused
        if isinstance(focused, KeyedTable) and focused.id is not None:
            self.active_table = focused.id
            self._follow_selection()

    def _follow_selection(self) -> None:
        subject = self._selected_subject()
        if subject != self._subject:
            self._subject = subject
            self._show_stacks(self._zoom_pid)

    @on(FunctionTable.StacksRequested)
    def _focus_stacks(self) -> None:
        self.stack_tree.focus()
