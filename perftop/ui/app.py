"""The perftop screen: processes, functions and call stacks of an IntervalSource, live.

The source is built (and for the live sampler, compiled and attached) before the app starts and
is closed by the caller. One thread worker iterates the sampling session (perftop.sampling.
session) and posts one message per interval; everything else, control calls to the source
included, runs on the UI thread. What stays here is compose, message handlers and actions:
signals, hang-ups and exit deadlines are perftop.ui.terminal's and perftop.ui.lifecycle's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.console import RenderableType
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.screen import Screen
from textual.worker import get_current_worker

from perftop.annotate.cache import CodeCache
from perftop.formats.recording import RecordingWriter
from perftop.model.modes import StackMode
from perftop.model.pids import check_exist, parse_pids
from perftop.model.samples import Interval
from perftop.model.stats import View
from perftop.sampling.replay import ReplaySource
from perftop.sampling.session import SamplingSession
from perftop.sampling.source import IntervalSource, SourceError
from perftop.sanitize import printable
from perftop.ui.keys import app_bindings, palette_commands
from perftop.ui.messages import IntervalReady, RecordingFailed, SourceEnded, SourceFailed
from perftop.ui.screen_diff import DiffedApp
from perftop.ui.source_actions import SourceControlActions
from perftop.ui.terminal import EXIT_FAILURE, EXIT_OK, ExitWatch
from perftop.ui.widgets.annotate_view import AnnotateRequested, AnnotateScreen
from perftop.ui.widgets.cgroup_table import CgroupTable
from perftop.ui.widgets.dashboard import Dashboard
from perftop.ui.widgets.filter_input import FilterInput
from perftop.ui.widgets.footer import KeysFooter
from perftop.ui.widgets.keyed_table import KeyedTable
from perftop.ui.widgets.process_table import ProcessTable
from perftop.viewmodel import (
    DEFAULT_DECAY_KEEP,
    ViewOptions,
    build_view,
)
from perftop.viewmodel.annotate import annotated_histogram
from perftop.viewmodel.layout import TALL_LINES

if TYPE_CHECKING:
    from perftop.ui.widgets.flame_view import FlameScreen

# Opened by a key, not on the first screen: the flame view, export, help, the cgroup prompt
# and the pid check import their modules when first used (bench/startup.py: the first frame
# waited for them).

# From this width the call-stack pane sits beside the tables (Screen.-wide in perftop.tcss);
# below it the panes are stacked, so at 120 columns the functions' SYMBOL gets the width.
WIDE_COLUMNS = 160
TABLE_ACTIONS = frozenset({"sort_next", "sort_previous", "reverse_sort"})


Shown = tuple[Interval, Interval]  # (the interval, the accumulation that includes it)


class PerftopApp(DiffedApp, SourceControlActions):
    CSS_PATH = "perftop.tcss"
    TITLE = "perftop"
    BINDINGS: ClassVar[list[BindingType]] = app_bindings()
    # Not a ClassVar annotation: Textual declares this one as a plain attribute.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_COLUMNS, "-wide")]  # noqa: RUF012
    # Below TALL_LINES lines the call-stack pane is its title line until focused.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (TALL_LINES, "-tall")]  # noqa: RUF012

    def __init__(
        self,
        source: IntervalSource,
        *,
        recorder: RecordingWriter | None = None,
        folded_pid: bool = False,
        decay_keep: float = DEFAULT_DECAY_KEEP,
        terminal_fd: int | None = None,
        early_signals: list[int] | None = None,
        exit_deadline: Callable[[int], None] | None = None,
        on_first_profile: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.options = ViewOptions(recording=recorder is not None, folded_pid=folded_pid)
        # The recording and the accumulation see every interval, even the ones the screen
        # skips when it falls behind: the session runs them on the sampler thread.
        self._session = SamplingSession(source, recorder=recorder, decay_keep=decay_keep)
        self._sampler_done = threading.Event()
        self._sampler_started = False
        # UI thread only.
        self._latest: Shown | None = None  # (interval, accumulation)
        self._shown: Shown | None = None  # what the frozen screen shows
        self._view: View | None = None  # the last view built, of `_shown` as the options say
        self._frequency = source.frequency_hz
        self._ended = False
        self._flame: FlameScreen | None = None
        self._annotate: AnnotateScreen | None = None
        self._code_cache = CodeCache()  # disassembly and source lines, read off this thread
        self.snapshots_received = 0  # handled IntervalReady messages (tests pace sources on it)
        # Given, the app leaves on a signal and when this terminal (its input) hangs up.
        self._exit_watch = (
            ExitWatch(terminal_fd, self._exit_unattended, early_signals or [])
            if terminal_fd is not None
            else None
        )
        # Called once, after the first interval with samples is painted (the start-up boost
        # ends there).
        self._on_first_profile = on_first_profile
        self._toasts_before_profile = False  # toasts up since before the first profile
        # Called with the exit status when a signal or a hang-up ends the app (see run_app).
        self._exit_deadline = exit_deadline
        # The one line to print once the screen is gone (run_app prints it: Textual's own exit
        # message is wrapped at the terminal's width, splitting a long line).
        self.failure_message: str | None = None

    def compose(self) -> ComposeResult:
        # The first frame is laid out as the rest: Textual sets the breakpoint classes on the
        # first Resize, which came after a frame without them (every pane laid out and painted
        # twice before the first complete screen).
        width, height = self.size
        self.screen.set_class(width < WIDE_COLUMNS, "-narrow")
        self.screen.set_class(width >= WIDE_COLUMNS, "-wide")
        self.screen.set_class(height < TALL_LINES, "-short")
        self.screen.set_class(height >= TALL_LINES, "-tall")
        # Kept, not queried: a query would search whichever screen is on top (help, prompts).
        self.dashboard = Dashboard(live=self.source.live)
        yield self.dashboard
        # No room for the palette key at 80 columns; the help screen names it (ctrl+p).
        yield KeysFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._render_view()
        self.dashboard.process_table.focus()
        # The first screen is painted before the sampler starts: its first next_interval starts
        # the BPF build (importing bcc loads LLVM), which would compete with that paint.
        self.call_after_refresh(self._start_sampler)
        if self._exit_watch is not None:
            self._exit_watch.start()

    def _start_sampler(self) -> None:
        if not self._sampler_started:
            self._sampler_started = True
            self._run_sampler()

    def on_unmount(self) -> None:
        if self._exit_watch is not None:
            self._exit_watch.stop()

    # The sampler thread ---------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sampler", name="sampler", description="sampler")
    def _run_sampler(self) -> None:
        worker = get_current_worker()
        try:
            try:
                for update in self._session:
                    if worker.is_cancelled:
                        return
                    if update.recording_error is not None:
                        self.post_message(RecordingFailed(update.recording_error))
                    # Built here, not on the UI thread, for the options as they are now (a
                    # frozen object, read whole); the screen builds another if they change.
                    options = self.options
                    base = update.accumulated if options.accumulated else update.latest
                    view = build_view(base, options.view_filter)
                    self.post_message(IntervalReady(update.latest, update.accumulated, view))
            except SourceError as error:
                self.post_message(SourceFailed(str(error)))
                return
            if not worker.is_cancelled:
                self.post_message(SourceEnded())
        finally:
            self._sampler_done.set()

    @property
    def ended(self) -> bool:
        """The source has no more intervals (a replay played to its end)."""
        return self._ended

    def wait_for_sampler(self, timeout: float) -> bool:
        """Wait until the sampler thread has left `next_interval`, so the caller can close the
        source without racing it. False when it is still inside after `timeout` seconds."""
        return not self._sampler_started or self._sampler_done.wait(timeout)

    # Messages from the sampler --------------------------------------------------------------

    @on(IntervalReady)
    def _snapshot_ready(self, message: IntervalReady) -> None:
        self.snapshots_received += 1
        latest = message.latest
        profiled = bool(latest.samples or latest.idle_samples)
        if profiled and self._toasts_before_profile:
            # What was said while the program loaded ("loading the BPF program...") is over.
            self.clear_notifications()
            self._toasts_before_profile = False
        for notice in latest.notices:
            self.notify(printable(notice, 200), severity="warning", timeout=8, markup=False)
        if not profiled and latest.notices:
            self._toasts_before_profile = True
        if self._latest is None:
            # Start from what the source was started with (-p, --stacks on the command line).
            self.options = replace(
                self.options,
                pids=message.latest.pid_filter,
                stack_mode=StackMode(message.latest.stack_mode),
                python_frames=message.latest.python_frames,
                cgroups=message.latest.cgroup_filter,
            )
        self._latest = (message.latest, message.accumulated)
        self._view = message.view
        replay = self._replay()
        if replay is not None and replay.position is not None:
            self.options = replace(self.options, replay_at=replay.position + 1)
        # A paused replay hands out only the intervals stepped or sought to: they are shown.
        if not self.options.paused or replay is not None:
            self._shown = self._latest
            self._render_view()
        if self._on_first_profile is not None and profiled:
            self.call_after_refresh(self._on_first_profile)
            self._on_first_profile = None

    @on(SourceEnded)
    def _source_ended(self) -> None:
        self._ended = True
        self._render_view()

    @on(SourceFailed)
    def _source_failed(self, message: SourceFailed) -> None:
        self.failure_message = f"perftop: {printable(str(message.error))}"
        self.exit(return_code=EXIT_FAILURE)

    @on(RecordingFailed)
    def _recording_failed(self, message: RecordingFailed) -> None:
        self.options = replace(self.options, recording=False)
        self._render_view()
        self.notify(
            f"recording stopped: {printable(message.error, 200)}",
            severity="error",
            timeout=15,
            markup=False,
        )

    # Drawing --------------------------------------------------------------------------------

    def current_view(self) -> View | None:
        """What the tables show: the interval or the accumulation, after the PID and text
        filters and the zoom. The flame graph draws it; `x` writes it. Built once per interval
        (on the sampler thread) and again only when the options change what it holds."""
        if self._shown is None:
            return None
        options = self.options
        base = self._shown[1] if options.accumulated else self._shown[0]
        view = self._view
        if view is None or view.interval is not base or view.filter != options.view_filter:
            view = self._view = build_view(base, options.view_filter)
        return view

    def _render_view(self) -> None:
        latest = self._shown[0] if self._shown is not None else None
        self.dashboard.show(latest, self.current_view(), self.options, ended=self._ended)
        if self._flame is not None:
            self._show_flame(self._flame)
        if self._annotate is not None:
            self._show_annotate(self._annotate)

    @on(AnnotateRequested)
    def _open_annotate(self, message: AnnotateRequested) -> None:
        if self._annotate is not None:
            return
        screen = self._annotate = AnnotateScreen(message.function, self._code_cache)

        def closed(_: None) -> None:
            self._annotate = None

        self.push_screen(screen, closed)
        self._show_annotate(screen)

    def _show_annotate(self, screen: AnnotateScreen) -> None:
        view = self.current_view()
        if view is None:
            screen.show(None)
            return
        screen.show(annotated_histogram(view, screen.function))

    def _show_flame(self, flame: FlameScreen) -> None:
        from perftop.viewmodel.export import view_subject, zoomed_comm

        view = self.current_view()
        flame.show(
            view,
            self._shown[0] if self._shown is not None else None,
            self.options,
            live=self.source.live,
            ended=self._ended,
            subject=view_subject(view, self.options),
            zoom_comm=zoomed_comm(view, self.options),
        )

    @on(ProcessTable.ZoomRequested)
    def _zoom(self, message: ProcessTable.ZoomRequested) -> None:
        view = self.current_view()
        sampled = view is not None and (
            view.interval.preview  # psutil's list while the program loads: samples will come
            or any(stack.pid == message.pid for stack in view.unzoomed_stacks)
        )
        if not sampled:
            # A watched PID that is quiet, or whose stacks the text filter hides: zooming in
            # would show an empty view with nothing saying why.
            self.notify(
                f"PID {message.pid} has no samples in this view: nothing to zoom into",
                timeout=4,
                markup=False,
            )
            return
        self.options = replace(self.options, zoom_pid=message.pid)
        self._render_view()

    @on(CgroupTable.ZoomRequested)
    def _zoom_cgroup(self, message: CgroupTable.ZoomRequested) -> None:
        # Its processes, in the pane that listed the cgroups: Esc (or `g`) goes back.
        self.options = replace(
            self.options, zoom_cgroup=message.cgroup, zoom_pid=None, by_cgroup=False
        )
        self.dashboard.group_by_cgroup(False)
        self._render_view()

    @on(KeyedTable.HeaderSelected)
    def _header_clicked(self, event: KeyedTable.HeaderSelected) -> None:
        if event.table.id == "cgroups":
            self.options = self.options.cgroup_sorted_by(event.column_id)
        else:
            self.options = self.options.sorted_by(event.table.id == "processes", event.column_id)
        self._render_view()

    # Actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filters":
            return self.options.filtered
        if action in TABLE_ACTIONS:
            # The tables are hidden under the flame graph: sorting them there would be invisible.
            return self._flame is None
        if action in ("flame", "export"):
            # Not from a dialog or the help: they would open on top of it.
            return self.screen is self.screen_stack[0] or self.screen is self._flame
        return True

    def action_quit(self) -> None:  # type: ignore[override]  # Textual's is async; exit is not
        self.exit(return_code=EXIT_OK)

    def exit(
        self, result: None = None, return_code: int = 0, message: RenderableType | None = None
    ) -> None:
        # Wake the sampler thread out of its interval wait: Textual joins it before returning.
        self.source.interrupt()
        super().exit(result, return_code, message)

    def action_help(self) -> None:
        from perftop.ui.widgets.help_screen import HelpScreen

        self.push_screen(HelpScreen(self._shown[0] if self._shown is not None else None))

    def action_flame(self) -> None:
        if self._flame is not None:
            if self.screen is self._flame:
                self._flame.dismiss(None)
            return
        from perftop.ui.widgets.flame_view import FlameScreen

        flame = self._flame = FlameScreen()

        def closed(_: None) -> None:
            self._flame = None

        self.push_screen(flame, closed)
        self._show_flame(flame)

    def action_export(self) -> None:
        from perftop.formats.files import write_export
        from perftop.ui.widgets.export_dialog import ExportDialog
        from perftop.viewmodel.export import export_request

        if self._shown is None:
            self.notify("nothing to export yet: no interval has arrived", timeout=4)
            return
        view = self.current_view()
        assert view is not None
        flame = self._flame
        if flame is not None and self.screen is flame and flame.graph.zoomed:
            # What the zoomed flame graph shows, not the whole view behind it.
            request = export_request(
                view, self.options, flame.graph.zoom_names(), flame.zoomed_stacks(view)
            )
        else:
            request = export_request(view, self.options)

        def write(export_format: str, path: Path, overwrite: bool) -> int:
            return write_export(
                path,
                export_format,
                request.stacks,
                request.meta,
                overwrite=overwrite,
                name=request.name,
            )

        self.push_screen(ExportDialog(request.summary, write))

    def action_sort_next(self) -> None:
        self._cycle_sort(1)

    def action_sort_previous(self) -> None:
        self._cycle_sort(-1)

    def _cycle_sort(self, step: int) -> None:
        table = self.dashboard.active_table
        if table == "cgroups":
            self.options = self.options.cgroup_sort_cycled(step)
        else:
            self.options = self.options.sort_cycled(table == "processes", step)
        self._render_view()

    def action_reverse_sort(self) -> None:
        table = self.dashboard.active_table
        if table == "cgroups":
            self.options = replace(self.options, cgroup_reverse=not self.options.cgroup_reverse)
        else:
            self.options = self.options.sort_reversed(table == "processes")
        self._render_view()

    def action_group_by_cgroup(self) -> None:
        self.options = replace(self.options, by_cgroup=not self.options.by_cgroup)
        self.dashboard.group_by_cgroup(self.options.by_cgroup)
        self._render_view()

    def action_cgroup_filter(self) -> None:
        prompt = FilterInput(
            "Sample only these cgroups and below them (comma separated, relative to the "
            "cgroup2 mount; empty for every cgroup):",
            ",".join(self.options.cgroups),
            "e.g. system.slice/nginx.service",
            check=self._check_cgroups,
        )
        self.push_screen(prompt, self._apply_cgroups)

    def _check_cgroups(self, text: str) -> str | None:
        """The command line's --cgroup words; existence only matters live."""
        from perftop.sampling.cgroups import cgroup_filter_paths

        try:
            cgroup_filter_paths(text, live=self.source.live)
        except ValueError as error:
            return printable(str(error))
        return None

    def _apply_cgroups(self, text: str | None) -> None:
        from perftop.sampling.cgroups import cgroup_filter_paths

        if text is None:
            return
        try:
            paths = cgroup_filter_paths(text, live=self.source.live)
            self.source.set_cgroup_filter(paths)
        except (ValueError, SourceError) as error:  # removed since the check
            self.notify(printable(str(error)), severity="error", markup=False)
            return
        if paths != self.options.cgroups:
            self._restart_accumulation()
        self.options = replace(self.options, cgroups=paths)
        self._render_view()

    def action_pid_filter(self) -> None:
        prompt = FilterInput(
            "Sample only these PIDs (comma separated; empty for every process):",
            ",".join(str(pid) for pid in self.options.pids),
            "e.g. 1234, 5678",
            check=self._check_pids,
        )
        self.push_screen(prompt, self._apply_pids)

    def _check_pids(self, text: str) -> str | None:
        """The command line's -p words (perftop.model.pids); existence only matters live."""
        import psutil

        try:
            pids = parse_pids(text)
            if self.source.live:
                check_exist(pids, psutil.pid_exists)
        except ValueError as error:
            return printable(str(error))
        return None

    def _apply_pids(self, text: str | None) -> None:
        if text is None:
            return
        pids = parse_pids(text)
        if pids != self.options.pids:
            self._change_pids(pids)
        self.options = replace(self.options, pids=pids)
        self._render_view()

    def action_text_filter(self) -> None:
        prompt = FilterInput(
            "Show the stacks whose command or a symbol contains (empty for all):",
            self.options.text_filter,
            "e.g. python, malloc",
        )
        self.push_screen(prompt, self._apply_text)

    def _apply_text(self, text: str | None) -> None:
        if text is not None:
            self.options = replace(self.options, text_filter=text)
            self._render_view()

    def action_clear_filters(self) -> None:
        options = self.options.stepped_back()
        if options.pids != self.options.pids:
            self._change_pids(options.pids)
        if options.cgroups != self.options.cgroups:
            self.source.set_cgroup_filter(options.cgroups)
            self._restart_accumulation()
        self.options = options
        self._render_view()

    def _change_pids(self, pids: tuple[int, ...]) -> None:
        """The kernel samples other PIDs from now: the decaying accumulation restarts, or it
        would show the old filter's processes fading out for seconds."""
        self.source.set_pid_filter(pids)
        self._restart_accumulation()

    def _restart_accumulation(self) -> None:
        self._session.zero()
        if self._shown is not None:
            latest, _ = self._shown
            self._shown = (latest, replace(latest, stacks=(), processes={}, leaf_offsets={}))

    def action_toggle_pause(self) -> None:
        self.options = replace(self.options, paused=not self.options.paused)
        replay = self._replay()
        if replay is not None:
            # The replay itself waits: nothing is skipped while the screen is paused.
            replay.pause(self.options.paused)
        if not self.options.paused:
            self._shown = self._latest
        self._render_view()

    def _replay(self) -> ReplaySource | None:
        source = self.source
        inner = getattr(source, "inner", source)  # a test's pacing wrapper holds the replay
        return inner if isinstance(inner, ReplaySource) else None

    def action_replay_step(self, step: int) -> None:
        """`.` and `,`: pause the replay and show the next or the previous interval."""
        replay = self._replay()
        if replay is None:
            self.notify("stepping needs a replay (--replay FILE)", timeout=3)
            return
        self.options = replace(self.options, paused=True)
        replay.pause(True)
        if step > 0:
            replay.step()
            self._restart_sampler_if_ended()
        else:
            self._replay_seek(replay, step)

    def action_replay_seek(self, delta: int) -> None:
        """`]` and `[`: move the replay by `delta` intervals."""
        replay = self._replay()
        if replay is None:
            self.notify("seeking needs a replay (--replay FILE)", timeout=3)
            return
        self._replay_seek(replay, delta)

    def _replay_seek(self, replay: ReplaySource, delta: int) -> None:
        replay.seek(delta)
        # Another stretch of the recording: its accumulation starts there.
        self._restart_accumulation()
        self._restart_sampler_if_ended()

    def _restart_sampler_if_ended(self) -> None:
        """A replay played to its end can be moved back into: its sampler starts again."""
        # The sampler posts SourceEnded just before its thread leaves: wait for that moment.
        if self._ended and self._sampler_done.wait(1.0):
            self._ended = False
            self._sampler_done.clear()
            self._run_sampler()

    def action_by_module(self) -> None:
        self.options = replace(self.options, by_module=not self.options.by_module)
        self._render_view()

    def action_toggle_accumulate(self) -> None:
        self.options = replace(self.options, accumulated=not self.options.accumulated)
        self._render_view()

    def action_toggle_callers(self) -> None:
        self.dashboard.show_callers(not self.dashboard.callers)

    def action_zero(self) -> None:
        self._restart_accumulation()
        self.notify("accumulated counts zeroed", timeout=3)
        self._render_view()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self.run_action)

    # Leaving --------------------------------------------------------------------------------

    def _exit_unattended(self, code: int) -> None:
        """A signal or a hang-up ends the app: the exit deadline is armed first."""
        if self._exit_deadline is not None:
            self._exit_deadline(code)
        self.exit(return_code=code)
