"""The perftop screen: processes, functions and call stacks of a SnapshotSource, live.

The source is built (and for the live sampler, compiled and attached) before the app starts and
is closed by the caller. One thread worker loops `source.next_snapshot()` and posts one message
per interval; everything else, control calls to the source included, runs on the UI thread.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import psutil
from rich.console import RenderableType
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import get_current_worker

from perftop.formats.exports import ProfileMeta
from perftop.formats.files import write_export
from perftop.formats.recording import RecordingError, RecordingWriter
from perftop.model.modes import StackMode
from perftop.model.pids import check_exist, parse_pids
from perftop.model.stats import Snapshot
from perftop.profile.aggregate import filter_stacks
from perftop.sampling.replay import NOT_IN_REPLAY
from perftop.sampling.source import SnapshotSource, SourceError
from perftop.sanitize import printable
from perftop.ui.keys import APP_KEYS, app_bindings
from perftop.ui.messages import RecordingFailed, SnapshotReady, SourceEnded, SourceFailed
from perftop.ui.screen_diff import TerminalDiff
from perftop.ui.terminal import HangupWatcher, terminal_gone
from perftop.ui.widgets.dashboard import Dashboard
from perftop.ui.widgets.event_picker import EventPicker
from perftop.ui.widgets.export_dialog import ExportDialog
from perftop.ui.widgets.filter_input import FilterInput
from perftop.ui.widgets.flame_view import FlameScreen
from perftop.ui.widgets.help_screen import HelpScreen
from perftop.ui.widgets.keyed_table import KeyedTable
from perftop.ui.widgets.process_table import ProcessTable
from perftop.viewmodel import (
    DEFAULT_DECAY_KEEP,
    FUNCTION_COLUMNS,
    PROCESS_COLUMNS,
    Accumulated,
    DecayingAccumulation,
    ViewOptions,
    cycle_sort,
    filtered_snapshot,
    next_frequency,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_NO_TERMINAL = 2
# SIGINT too: a KeyboardInterrupt raised wherever the event loop happens to be can leave the
# screen hung; handled in the loop it leaves like `q` (status 0), the others with 128 + signum.
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
EXIT_DEADLINE_S = 10.0
# With the terminal gone (the SSH connection dropped) nobody is left to see a restored screen,
# and perftop must be gone within 2 s: the hang-up is seen at once (HangupWatcher), then at most
# this.
HANGUP_DEADLINE_S = 1.2
# From this width the call-stack pane sits beside the tables (Screen.-wide in perftop.tcss).
WIDE_COLUMNS = 120
TABLE_ACTIONS = frozenset({"sort_next", "sort_previous", "reverse_sort"})


Shown = tuple[Snapshot, Accumulated]  # (the interval, the accumulation that includes it)


class KeysFooter(Footer):
    """Textual's footer, with its keys in the first frame: Footer composes nothing until the
    screen's bindings are published after a refresh, so the first complete screen (the one
    with the keys) came two frames and ~0.15 s after the first. Recomposed as Footer is when
    the bindings change (focus moves)."""

    def __init__(self, *, compact: bool, show_command_palette: bool) -> None:
        super().__init__(compact=compact, show_command_palette=show_command_palette)
        self.set_reactive(Footer._bindings_ready, True)


def shown_pair(shown: Shown, options: ViewOptions) -> tuple[Snapshot, Snapshot]:
    """The interval and the accumulation, aggregated only when the view shows it."""
    latest, accumulated = shown
    return latest, accumulated.snapshot() if options.accumulated else latest


def current_view(shown: Shown, options: ViewOptions) -> Snapshot:
    """What the tables show: the interval or the accumulation, after the PID and text filters,
    with only the zoomed process's stacks when zoomed. The flame graph draws it; `x` writes it."""
    base = shown_pair(shown, options)[1]
    view = filtered_snapshot(base, options.pids, options.text_filter)
    if options.zoom_pid is None:
        return view
    stacks = filter_stacks(view.stacks, pids=(options.zoom_pid,))
    return replace(
        view,
        stacks=stacks,
        samples=sum(stack.samples for stack in stacks),
        processes=tuple(p for p in view.processes if p.pid == options.zoom_pid),
    )


def zoomed_comm(view: Snapshot | None, options: ViewOptions) -> str:
    if view is None or options.zoom_pid is None:
        return ""
    return next((p.comm for p in view.processes if p.pid == options.zoom_pid), "")


def view_subject(view: Snapshot | None, options: ViewOptions) -> str:
    """What the view is of, in a few words: `all processes` or `PID 42 nginx`."""
    if options.zoom_pid is None:
        return "all processes"
    return f"PID {options.zoom_pid} {printable(zoomed_comm(view, options), 24)}".rstrip()


class PerftopApp(App[None]):
    CSS_PATH = "perftop.tcss"
    TITLE = "perftop"
    BINDINGS: ClassVar[list[BindingType]] = app_bindings()
    # Not a ClassVar annotation: Textual declares this one as a plain attribute.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_COLUMNS, "-wide")]  # noqa: RUF012

    def __init__(
        self,
        source: SnapshotSource,
        *,
        recorder: RecordingWriter | None = None,
        decay_keep: float = DEFAULT_DECAY_KEEP,
        terminal_fd: int | None = None,
        early_signals: list[int] | None = None,
        exit_deadline: Callable[[int], None] | None = None,
        on_first_profile: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.options = ViewOptions()
        # Sampler thread only: the recording and the accumulation see every interval, even the
        # ones the screen skips when it falls behind.
        self._recorder = recorder
        self._accumulation = DecayingAccumulation(decay_keep)
        self._zero_requested = threading.Event()
        self._sampler_done = threading.Event()
        self._sampler_started = False
        # UI thread only.
        self._latest: Shown | None = None  # (interval, accumulation)
        self._shown: Shown | None = None  # what the frozen screen shows
        self._frequency = source.frequency_hz
        self._ended = False
        self._flame: FlameScreen | None = None
        self.snapshots_received = 0  # handled SnapshotReady messages (tests pace sources on it)
        # Given, the app leaves on EXIT_SIGNALS and when this terminal (its input) hangs up.
        self._terminal_fd = terminal_fd
        self._hangup_watcher: HangupWatcher | None = None
        self._early_signals = early_signals if early_signals is not None else []
        # Called once, after the first interval with samples is painted (the start-up boost
        # ends there).
        self._on_first_profile = on_first_profile
        self._toasts_before_profile = False  # toasts up since before the first profile
        # Called with the exit status when a signal or a hang-up ends the app (see run_app).
        self._exit_deadline = exit_deadline
        # The one line to print once the screen is gone (run_app prints it: Textual's own exit
        # message is wrapped at the terminal's width, splitting a long line).
        self.failure_message: str | None = None
        # Only what changed reaches the terminal (see screen_diff); PERFTOP_FULL_REPAINT=1 sends
        # Textual's output as it is (to compare the two).
        self._terminal_diff = None if os.environ.get("PERFTOP_FULL_REPAINT") else TerminalDiff()

    def _display(self, screen: Screen[object], renderable: RenderableType | None) -> None:
        if self._terminal_diff is not None and renderable is not None:
            renderable = self._terminal_diff.update(  # type: ignore[assignment]
                id(screen), screen.size, renderable, self.console._color_system
            )
        super()._display(screen, renderable)

    def compose(self) -> ComposeResult:
        # The first frame is laid out as the rest: Textual sets the breakpoint classes on the
        # first Resize, which came after a frame without them (every pane laid out and painted
        # twice before the first complete screen).
        width = self.size.width
        self.screen.set_class(width < WIDE_COLUMNS, "-narrow")
        self.screen.set_class(width >= WIDE_COLUMNS, "-wide")
        # Kept, not queried: a query would search whichever screen is on top (help, prompts).
        self.dashboard = Dashboard(live=self.source.live)
        yield self.dashboard
        # No room for the palette key at 80 columns; the help screen names it (ctrl+p).
        yield KeysFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._render_view()
        self.dashboard.process_table.focus()
        # The first screen is painted before the sampler starts: its first next_snapshot starts
        # the BPF build (importing bcc loads LLVM), which would compete with that paint.
        self.call_after_refresh(self._start_sampler)
        if self._terminal_fd is not None:
            loop = asyncio.get_running_loop()
            for signum in EXIT_SIGNALS:
                loop.add_signal_handler(signum, self._exit_on_signal, signum)
            for early in self._early_signals[:1]:
                self._exit_on_signal(early)

            def hung_up() -> None:  # already gone: poll(2) says so at once
                try:
                    loop.call_soon_threadsafe(self._exit_on_hangup)
                except RuntimeError:  # the loop has closed: the app is gone already
                    pass

            self._hangup_watcher = HangupWatcher(self._terminal_fd, hung_up)
            self._hangup_watcher.start()

    def _start_sampler(self) -> None:
        if not self._sampler_started:
            self._sampler_started = True
            self._run_sampler()

    def on_unmount(self) -> None:
        if self._hangup_watcher is not None:
            self._hangup_watcher.stop()
        if self._terminal_fd is not None:
            loop = asyncio.get_running_loop()
            for signum in EXIT_SIGNALS:
                loop.remove_signal_handler(signum)

    # The sampler thread ---------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sampler", name="sampler", description="sampler")
    def _run_sampler(self) -> None:
        worker = get_current_worker()
        try:
            while not worker.is_cancelled:
                try:
                    snapshot = self.source.next_snapshot()
                except SourceError as error:
                    self.post_message(SourceFailed(str(error)))
                    return
                if snapshot is None:
                    self.post_message(SourceEnded())
                    return
                if worker.is_cancelled:
                    return
                self._record(snapshot)
                if self._zero_requested.is_set():
                    self._zero_requested.clear()
                    self._accumulation.reset()
                accumulated = self._accumulation.add(snapshot)
                if self.options.accumulated:
                    accumulated.snapshot()  # aggregated here, not on the UI thread
                self.post_message(SnapshotReady(snapshot, accumulated))
        finally:
            self._sampler_done.set()

    def _record(self, snapshot: Snapshot) -> None:
        if self._recorder is None:
            return
        try:
            self._recorder.write(snapshot)
        except RecordingError as error:
            self._recorder = None
            self.post_message(RecordingFailed(str(error)))

    @property
    def ended(self) -> bool:
        """The source has no more snapshots (a replay played to its end)."""
        return self._ended

    def wait_for_sampler(self, timeout: float) -> bool:
        """Wait until the sampler thread has left `next_snapshot`, so the caller can close the
        source without racing it. False when it is still inside after `timeout` seconds."""
        return not self._sampler_started or self._sampler_done.wait(timeout)

    # Messages from the sampler --------------------------------------------------------------

    @on(SnapshotReady)
    def _snapshot_ready(self, message: SnapshotReady) -> None:
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
            )
        self._latest = (message.latest, message.accumulated)
        if not self.options.paused:
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
        self.notify(
            f"recording stopped: {message.error}", severity="error", timeout=15, markup=False
        )

    # Drawing --------------------------------------------------------------------------------

    def _render_view(self) -> None:
        shown = shown_pair(self._shown, self.options) if self._shown is not None else None
        self.dashboard.show(shown, self.options, ended=self._ended)
        if self._flame is not None:
            self._show_flame(self._flame)

    def _show_flame(self, flame: FlameScreen) -> None:
        view = current_view(self._shown, self.options) if self._shown is not None else None
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
        self.options = replace(self.options, zoom_pid=message.pid)
        self._render_view()

    @on(KeyedTable.HeaderSelected)
    def _header_clicked(self, event: KeyedTable.HeaderSelected) -> None:
        column = event.column_id
        if event.table.id == "processes":
            same = column == self.options.process_sort
            reverse = not self.options.process_reverse if same else False
            self.options = replace(self.options, process_sort=column, process_reverse=reverse)
        else:
            same = column == self.options.function_sort
            reverse = not self.options.function_reverse if same else False
            self.options = replace(self.options, function_sort=column, function_reverse=reverse)
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
        self.push_screen(HelpScreen())

    def action_flame(self) -> None:
        if self._flame is not None:
            if self.screen is self._flame:
                self._flame.dismiss(None)
            return
        flame = self._flame = FlameScreen()

        def closed(_: None) -> None:
            self._flame = None

        self.push_screen(flame, closed)
        self._show_flame(flame)

    def action_export(self) -> None:
        if self._shown is None:
            self.notify("nothing to export yet: no interval has arrived", timeout=4)
            return
        view = current_view(self._shown, self.options)
        subject = view_subject(view, self.options)
        what = "accumulated (decaying)" if self.options.accumulated else "last interval"
        meta = ProfileMeta(
            event=view.event,
            frequency_hz=view.frequency_hz,
            duration_s=view.interval_s,
            start_time=view.timestamp - view.interval_s,
        )
        name = f"perftop {printable(view.event, 24)}: {subject}, {what}"

        def write(export_format: str, path: Path, overwrite: bool) -> int:
            return write_export(
                path, export_format, view.stacks, meta, overwrite=overwrite, name=name
            )

        summary = f"{subject}, {what}: {view.samples:,} samples in {len(view.stacks):,} stacks"
        if self.options.pids or self.options.text_filter:
            summary += " (filtered)"
        self.push_screen(ExportDialog(summary, write))

    def action_sort_next(self) -> None:
        self._cycle_sort(1)

    def action_sort_previous(self) -> None:
        self._cycle_sort(-1)

    def _cycle_sort(self, step: int) -> None:
        options = self.options
        if self.dashboard.active_table == "processes":
            column = cycle_sort(PROCESS_COLUMNS, options.process_sort, step)
            self.options = replace(options, process_sort=column, process_reverse=False)
        else:
            column = cycle_sort(FUNCTION_COLUMNS, options.function_sort, step)
            self.options = replace(options, function_sort=column, function_reverse=False)
        self._render_view()

    def action_reverse_sort(self) -> None:
        options = self.options
        if self.dashboard.active_table == "processes":
            self.options = replace(options, process_reverse=not options.process_reverse)
        else:
            self.options = replace(options, function_reverse=not options.function_reverse)
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
        self.source.set_pid_filter(pids)
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
        if self.options.pids:
            self.source.set_pid_filter(())
        self.options = self.options.cleared()
        self._render_view()

    def action_toggle_pause(self) -> None:
        self.options = replace(self.options, paused=not self.options.paused)
        if not self.options.paused:
            self._shown = self._latest
        self._render_view()

    def action_toggle_accumulate(self) -> None:
        self.options = replace(self.options, accumulated=not self.options.accumulated)
        self._render_view()

    def action_zero(self) -> None:
        self._zero_requested.set()
        if self._shown is not None:
            latest, _ = self._shown
            self._shown = (latest, Accumulated(latest, (), {}))
        self.notify("accumulated counts zeroed", timeout=3)
        self._render_view()

    def action_pick_event(self) -> None:
        self.push_screen(EventPicker(self.source.events(), self.source.event), self._apply_event)

    def _apply_event(self, event: str | None) -> None:
        if event is None:
            return
        if event == self.source.event:
            self.notify(f"already sampling {printable(event, 24)}", timeout=3, markup=False)
        elif self._refuse_in_replay(f"switching to {printable(event, 24)}"):
            return
        else:
            self.source.set_event(event)
            self.notify(f"switching to {printable(event, 24)} at the next interval", markup=False)

    def action_cycle_stack_mode(self) -> None:
        mode = self.options.stack_mode.next()
        if self._refuse_in_replay(f"{mode} stacks"):
            return
        self.source.set_stack_mode(mode)
        self.options = replace(self.options, stack_mode=mode)
        self.notify(f"{mode} stacks from the next interval", timeout=3)
        self._render_view()

    def action_faster(self) -> None:
        self._step_frequency(1)

    def action_slower(self) -> None:
        self._step_frequency(-1)

    def _step_frequency(self, step: int) -> None:
        hz = next_frequency(self._frequency, step)
        if hz is None:
            self.notify(
                f"already at {self._frequency} Hz, the {'highest' if step > 0 else 'lowest'} step"
            )
        elif not self._refuse_in_replay(f"sampling at {hz} Hz"):
            self.source.set_frequency(hz)
            self._frequency = hz
            self.notify(f"sampling at {hz} Hz from the next interval", timeout=3)

    def _refuse_in_replay(self, what: str) -> bool:
        if self.source.live:
            return False
        self.notify(f"{what}: {NOT_IN_REPLAY}", severity="warning", timeout=4, markup=False)
        return True

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen = {"quit"}  # Textual's palette already has Quit
        for key in APP_KEYS:
            if key.action not in seen:
                seen.add(key.action)
                yield SystemCommand(
                    key.label, f"{key.help} ({key.display})", self._command(key.action)
                )

    def _command(self, action: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await self.run_action(action)

        return run

    # Leaving --------------------------------------------------------------------------------

    def _exit_on_signal(self, signum: int) -> None:
        self._exit_unattended(EXIT_OK if signum == signal.SIGINT else 128 + signum)

    def _exit_on_hangup(self) -> None:
        self._exit_unattended(128 + signal.SIGHUP)

    def _exit_unattended(self, code: int) -> None:
        if self._exit_deadline is not None:
            self._exit_deadline(code)
        self.exit(return_code=code)


def run_app(
    source: SnapshotSource,
    *,
    record_path: Path | None = None,
    on_first_profile: Callable[[], None] | None = None,
) -> int:
    """Show `source` until the user quits, a signal or a hang-up ends it; the exit status.

    The caller closes the source afterwards: this returns only once the sampler thread has left
    `next_snapshot` (or after a bounded wait). Raises RecordingError (a SourceError) when the
    recording cannot be created, before the screen starts.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(
            "perftop: the screen needs a terminal on stdin and stdout; use --batch for text",
            file=sys.stderr,
        )
        return EXIT_NO_TERMINAL
    recorder = RecordingWriter(record_path) if record_path is not None else None
    # Until the app's own handlers are in place, remember a signal instead of dying mid-setup
    # with the terminal in raw mode; the app acts on it as soon as it is mounted.
    early: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in EXIT_SIGNALS}
    for signum in EXIT_SIGNALS:
        signal.signal(signum, lambda number, _frame: early.append(number))
    # Textual's shutdown has been seen to hang for good on a terminal that went away (its output
    # thread died on the dead terminal and its queue filled;
    # perftop.system.terminal_fds.TerminalStream prevents that one). Should another hang,
    # nobody is left to see the screen then, so
    # once a signal or a hang-up has asked perftop to leave, it leaves within EXIT_DEADLINE_S
    # (HANGUP_DEADLINE_S when the terminal is already gone); the kernel detaches the probes with
    # the file descriptors.
    deadline: list[threading.Timer] = []
    terminal_fd = sys.__stdin__.fileno() if sys.__stdin__ else 0

    def exit_deadline(code: int) -> None:
        if not deadline:
            gone = terminal_gone(terminal_fd)
            seconds = HANGUP_DEADLINE_S if gone else EXIT_DEADLINE_S
            deadline.append(threading.Timer(seconds, os._exit, args=(code,)))
            deadline[0].daemon = True
            deadline[0].start()

    app = PerftopApp(
        source,
        recorder=recorder,
        terminal_fd=terminal_fd,
        early_signals=early,
        exit_deadline=exit_deadline,
        on_first_profile=on_first_profile,
    )
    try:
        app.run()
    finally:
        for timer in deadline:
            timer.cancel()
        app.wait_for_sampler(timeout=5.0)
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if recorder is not None:
            recorder.close()
    if app.failure_message is not None:
        print(app.failure_message, file=sys.stderr)
    return app.return_code if app.return_code is not None else EXIT_OK
