"""Running the screen in a terminal: start-up signals, exit deadlines, the status to return."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from perftop.formats.recording import RecordingWriter
from perftop.sampling.source import IntervalSource
from perftop.ui.app import PerftopApp
from perftop.ui.collector_log import log_collections_if_asked
from perftop.ui.terminal import EXIT_NO_TERMINAL, EXIT_OK, EXIT_SIGNALS, terminal_gone

EXIT_DEADLINE_S = 10.0
# With the terminal gone (the SSH connection dropped) nobody is left to see a restored screen,
# and perftop must be gone within 2 s: the hang-up is seen at once (HangupWatcher), then at most
# this.
HANGUP_DEADLINE_S = 1.2


def run_app(
    source: IntervalSource,
    *,
    record_path: Path | None = None,
    folded_pid: bool = False,
    on_first_profile: Callable[[], None] | None = None,
) -> int:
    """Show `source` until the user quits, a signal or a hang-up ends it; the exit status.

    The caller closes the source afterwards: this returns only once the sampler thread has left
    `next_interval` (or after a bounded wait). Raises RecordingError (a SourceError) when the
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
        folded_pid=folded_pid,
        terminal_fd=terminal_fd,
        early_signals=early,
        exit_deadline=exit_deadline,
        on_first_profile=on_first_profile,
    )
    collector_log = log_collections_if_asked()
    try:
        app.run()
    finally:
        if collector_log is not None:
            collector_log.close()
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
