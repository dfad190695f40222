"""Command line -> Config, and the batch loop. Errors become one line and exit status 2."""

from __future__ import annotations

import argparse
import io
import signal
import stat
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn, TextIO

from perftop.cli.batch import Stop, run_batch, stop_on_signal
from perftop.config import Config, SamplerConfig
from perftop.formats.files import ExportError, open_export
from perftop.formats.registry import FORMATS, OutputKind
from perftop.model.events import EVENTS
from perftop.model.modes import StackMode
from perftop.model.pids import check_exist, parse_pids
from perftop.sampling.source import IntervalSource, SourceError
from perftop.sanitize import printable
from perftop.system.memory import keep_large_blocks_in_mmap

if TYPE_CHECKING:
    from perftop.system.boost import StartupBoost

EXIT_USAGE = 2
EXIT_FAILURE = 1
MAX_FREQUENCY = 100_000
MAX_INTERVAL_S = 3600.0
# The screen's first profile comes a quarter second after the program is attached: what the
# user has waited for is the compile, not another whole interval.
FIRST_INTERVAL_S = 0.25


_WHOLE_RUN = [name for name, found in FORMATS.items() if found.kind is not OutputKind.PER_INTERVAL]
_AT_EXIT = f"{', '.join(_WHOLE_RUN[:-1])} and {_WHOLE_RUN[-1]}"


class UsageError(Exception):
    """Bad input: one line for the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not 0 < value <= MAX_INTERVAL_S or value != value:
        raise argparse.ArgumentTypeError(f"interval must be > 0 and <= {MAX_INTERVAL_S:.0f} s")
    return value


def _frequency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of Hz") from None
    if not 1 <= value <= MAX_FREQUENCY:
        raise argparse.ArgumentTypeError(f"frequency must be between 1 and {MAX_FREQUENCY} Hz")
    return value


def _iterations(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("iterations must be at least 1")
    return value


def parse_pid_option(text: str) -> tuple[int, ...]:
    """`-p 1,2,3` -> (1, 2, 3); each must be a live process. The screen's `p` prompt says the
    same things in the same words (perftop.model.pids)."""
    import psutil

    try:
        pids = parse_pids(text)
        if not pids:
            # `-p "$PID"` with $PID unset must not quietly profile the whole machine.
            raise ValueError("-p needs at least one PID (it was given an empty list)")
        check_exist(pids, psutil.pid_exists)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return pids


def parse_cgroup_option(text: str, replay: bool = False) -> tuple[str, ...]:
    """`--cgroup PATH[,PATH]`: live, cgroups of this machine's cgroup2 mount; for a replay, the
    recorded paths. The screen's `c` prompt says the same things in the same words."""
    from perftop.system.cgroup_selection import parse_cgroup_paths

    try:
        paths = parse_cgroup_paths(text, live=not replay)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if not paths:
        # `--cgroup "$UNIT"` with $UNIT unset must not quietly profile the whole machine.
        raise UsageError("--cgroup needs at least one cgroup path (it was given an empty list)")
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="perftop",
        description="A live CPU profiler: which processes and functions burn the CPUs.",
        epilog="`perftop doctor` checks whether this machine can run perftop.",
    )
    parser.add_argument("--batch", action="store_true", help="print reports instead of the screen")
    parser.add_argument(
        "-d",
        "--delay",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="interval between reports (default 1)",
    )
    parser.add_argument(
        "-n",
        "--iterations",
        type=_iterations,
        metavar="N",
        help="stop after N intervals (batch; default: until interrupted)",
    )
    parser.add_argument(
        "--format",
        choices=list(FORMATS),
        default="text",
        help=f"batch output format; {_AT_EXIT} are written at exit",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write batch output to FILE (refuses to overwrite without --force)",
    )
    parser.add_argument("--force", action="store_true", help="allow -o to replace a file")
    parser.add_argument(
        "--folded-pid",
        action="store_true",
        help="folded stacks start at comm-PID, so processes of one name stay apart",
    )
    parser.add_argument("-p", "--pid", metavar="PID[,PID...]", help="only these processes")
    parser.add_argument(
        "--cgroup",
        metavar="PATH[,PATH...]",
        help="only the tasks in these cgroup v2 directories and below them (relative to the "
        "cgroup2 mount, or absolute); applied in the kernel",
    )
    parser.add_argument(
        "-e",
        "--event",
        default="cpu-clock",
        metavar="EVENT",
        help=f"event to sample: {', '.join(EVENTS)} (default cpu-clock)",
    )
    parser.add_argument(
        "-F",
        "--freq",
        type=_frequency,
        default=99,
        metavar="HZ",
        help="samples per second per CPU (default 99)",
    )
    parser.add_argument(
        "--stacks",
        choices=[mode.value for mode in StackMode],
        default=StackMode.BOTH.value,
        help="which stacks to collect (default both)",
    )
    parser.add_argument(
        "--unwind",
        choices=["table", "fp"],
        default="table",
        help="user stacks by .eh_frame unwind tables where binaries have them (default), or "
        "by frame pointers only",
    )
    parser.add_argument(
        "--no-python",
        action="store_true",
        help="show CPython processes' native frames only, not their Python functions",
    )
    parser.add_argument(
        "--top",
        type=_iterations,
        default=20,
        metavar="N",
        help="rows per table in text output (default 20)",
    )
    parser.add_argument(
        "--annotate",
        metavar="SYMBOL",
        help="batch: each interval, SYMBOL's instructions (or Python lines) with their share "
        "of its samples (--format text or json)",
    )
    parser.add_argument("--record", type=Path, metavar="FILE", help="save every interval to FILE")
    parser.add_argument(
        "--replay", type=Path, metavar="FILE", help="show a recording (no root or BPF needed)"
    )
    parser.add_argument(
        "--debuginfod",
        action="store_true",
        help="allow symbol lookups over the network (DEBUGINFOD_URLS)",
    )
    return parser


def parse_config(argv: Sequence[str]) -> Config:
    args = build_parser().parse_args(argv)
    if args.event not in EVENTS:
        raise UsageError(f"unknown event '{args.event}' (known: {', '.join(EVENTS)})")
    if FORMATS[args.format].needs_output_file and args.output is None:
        raise UsageError(f"--format {args.format} writes a file: name it with -o FILE")
    if args.folded_pid and args.batch and args.format != "folded":
        # On the screen it shapes the `x` dialog's folded files; in batch mode only folded.
        raise UsageError("--folded-pid is for --format folded")
    if args.output is not None:
        _check_output_path(args.output, args.force)
    if args.record is not None:
        _check_output_path(args.record, force=False)
    if args.replay is not None and not args.replay.is_file():
        raise UsageError(f"no recording at {args.replay}")
    if args.annotate is not None:
        if not args.batch:
            raise UsageError("--annotate prints in batch mode: add --batch (on the screen: a)")
        if args.format not in ("text", "json"):
            raise UsageError("--annotate prints --format text or json")
        if not args.annotate.strip():
            raise UsageError("--annotate needs a function name")
    pids = parse_pid_option(args.pid) if args.pid is not None else ()
    cgroups = (
        parse_cgroup_option(args.cgroup, replay=args.replay is not None)
        if args.cgroup is not None
        else ()
    )
    sampler = SamplerConfig(
        event=args.event,
        frequency_hz=args.freq,
        interval_s=args.delay if args.delay is not None else 1.0,
        pids=pids,
        cgroups=cgroups,
        stack_mode=StackMode(args.stacks),
        python_frames=not args.no_python,
        unwind=args.unwind,
        debuginfod=args.debuginfod,
    )
    return Config(
        sampler=sampler,
        batch=args.batch,
        iterations=args.iterations,
        output_format=args.format,
        output_path=args.output,
        output_force=args.force,
        folded_pid=args.folded_pid,
        record_path=args.record,
        replay_path=args.replay,
        replay_interval_s=args.delay,
        top=args.top,
        annotate=args.annotate,
    )


def _check_output_path(path: Path, force: bool) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise UsageError(f"cannot write {path}: no directory {path.parent}") from None
        return
    except NotADirectoryError:
        raise UsageError(f"cannot write {path}: a parent of it is not a directory") from None
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"cannot write {path}: it is a directory")
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(f"cannot write {path}: it is a symlink (perftop never follows one)")
    if not force:
        raise UsageError(f"{path} already exists (add --force to replace it)")


def open_output(path: Path, force: bool) -> TextIO:
    """Open without following a symlink, and without replacing a file unless asked."""
    return io.TextIOWrapper(open_export(path, overwrite=force), encoding="utf-8")


def open_source(config: Config) -> IntervalSource:
    if config.replay_path is not None:
        from perftop.sampling.replay import ReplaySource

        # Without -d a replay keeps the pace it was recorded at.
        replay = ReplaySource(config.replay_path, interval_s=config.replay_interval_s)
        if config.sampler.cgroups:
            replay.set_cgroup_filter(config.sampler.cgroups)
        return replay
    if not config.batch:
        # The screen paints at once; the program compiles beside it (even importing bcc,
        # which loads LLVM, happens on that thread).
        from perftop.sampling.deferred import DeferredSource

        sampler = replace(config.sampler, first_interval_s=FIRST_INTERVAL_S)

        def build() -> IntervalSource:
            from perftop.sampling.bcc.source import BccSource

            return BccSource(sampler)

        return DeferredSource(build, config.sampler)
    from perftop.sampling.bcc.source import BccSource

    return BccSource(config.sampler)


def main(argv: Sequence[str] | None = None, boost: StartupBoost | None = None) -> int:
    """`boost`: taken by perftop.launch (the `perftop` command) before the imports, which
    gives it back on the way out; the screen gives it back once the first profile is painted,
    a batch run once its first interval is written."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["doctor"]:
        from perftop.cli.doctor import run_doctor

        return run_doctor(sys.stdout)
    try:
        config = parse_config(argv)
    except UsageError as error:
        # The message may echo what was typed: a newline or escape in it stays on one line.
        print(f"perftop: {printable(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    if config.replay_path is None:
        from perftop.system.privileges import privilege_summary

        enough, summary = privilege_summary()
        if not enough:
            print(f"perftop: {printable(summary)}", file=sys.stderr)
            return EXIT_FAILURE
    keep_large_blocks_in_mmap()  # before the compile and the first symbol tables
    # SIGTERM and SIGHUP (the SSH connection drops) must detach the probes like ^C does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_on_signal)
    source: IntervalSource | None = None
    stream: TextIO = sys.stdout
    profile: BinaryIO | None = None
    try:
        if not config.batch:
            from perftop.system.stdio import terminal_for_screen_only

            with terminal_for_screen_only():
                # The compile starts with the sampler, after the first screen is painted: its
                # imports (bcc, LLVM) share the GIL with the screen's, and starting it here made
                # the first screen ~0.1 s later and the first profile no sooner
                # (bench/startup.py, 8 runs each way).
                source = open_source(config)
                from perftop.ui.lifecycle import run_app

                try:
                    return run_app(
                        source,
                        record_path=config.record_path,
                        folded_pid=config.folded_pid,
                        on_first_profile=boost.end if boost is not None else None,
                    )
                finally:
                    source.close()  # before fds 1 and 2 are handed back to the terminal
        source = open_source(config)
        if config.output_path is not None and FORMATS[config.output_format].needs_output_file:
            profile = open_export(config.output_path, overwrite=config.output_force)
        elif config.output_path is not None:
            stream = open_output(config.output_path, force=config.output_force)
        return run_batch(
            config,
            source,
            stream,
            profile,
            on_first_interval=boost.end if boost is not None else None,
        )
    except (ExportError, SourceError) as error:
        print(f"perftop: {printable(str(error))}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as error:
        message = f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")
        print(f"perftop: {printable(message)}", file=sys.stderr)
        return EXIT_FAILURE
    except (KeyboardInterrupt, Stop):
        return 0
    finally:
        if source is not None:
            source.close()
        if stream is not sys.stdout:
            stream.close()
        if profile is not None:
            profile.close()


if __name__ == "__main__":
    sys.exit(main())
