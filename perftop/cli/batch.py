"""Batch mode: a sink of the sampling session that prints each interval or writes the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import BinaryIO, TextIO

from perftop.config import Config
from perftop.formats.exports import ProfileMeta
from perftop.formats.files import encode
from perftop.formats.registry import FORMATS, OutputKind
from perftop.model.samples import Interval, StackSample
from perftop.sampling.source import IntervalSource


class Stop(BaseException):  # not Exception: must not be mistaken for a compile failure
    pass


def stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stop(signum)


def run_batch(
    config: Config,
    source: IntervalSource,
    stream: TextIO,
    profile: BinaryIO | None = None,
    on_first_interval: Callable[[], None] | None = None,
) -> int:
    """Report each interval on `stream`; folded stacks go there at exit, and a speedscope or
    pprof profile of every interval goes to `profile` (already opened, so a bad path fails
    before sampling starts rather than after it). `on_first_interval` is called once the first
    interval is handled (the start-up boost ends there, as the screen's does)."""
    from perftop.cli.annotate import BatchAnnotator
    from perftop.formats.output import FoldedAccumulator
    from perftop.formats.recording import RecordingError
    from perftop.profile.view import build_view
    from perftop.sampling.session import SamplingSession

    annotator = BatchAnnotator(config.annotate or "", json=config.output_format == "json")
    folded = FoldedAccumulator()
    whole_run = WholeRun()
    recorder = None
    if config.record_path is not None:
        from perftop.formats.recording import RecordingWriter

        recorder = RecordingWriter(config.record_path)
    session = SamplingSession(source, recorder=recorder, accumulate=False)
    done = 0
    try:
        for update in session:
            if update.recording_error is not None:
                raise RecordingError(update.recording_error)
            interval = update.latest
            done += 1
            output = FORMATS[config.output_format]
            if config.annotate is not None:
                stream.write(annotator.interval(interval))
            elif output.kind is OutputKind.PER_INTERVAL:
                stream.write(output.write_interval(build_view(interval), config.top))
            elif output.kind is OutputKind.FOLDED:
                folded.add(interval.stacks)
            else:
                whole_run.add(interval)
            stream.flush()
            if on_first_interval is not None:
                on_first_interval()
                on_first_interval = None
            if config.iterations is not None and done >= config.iterations:
                break
    except (KeyboardInterrupt, Stop):
        pass
    finally:
        if recorder is not None:
            recorder.close()
        if config.output_format == "folded" and config.annotate is None:
            folded.write(stream)
            stream.flush()
        if profile is not None:
            profile.write(whole_run.encode(config.output_format))
            profile.flush()
    return 0


class WholeRun:
    """Every interval's stacks merged, for a profile of the whole run."""

    def __init__(self) -> None:
        self.stacks: tuple[StackSample, ...] = ()
        self.meta: ProfileMeta | None = None

    def add(self, interval: Interval) -> None:
        from perftop.profile.aggregate import merge_stacks

        if self.meta is None:
            self.meta = ProfileMeta(
                event=interval.event,
                frequency_hz=interval.frequency_hz,
                start_time=interval.timestamp - interval.interval_s,
            )
        self.meta = replace(self.meta, duration_s=self.meta.duration_s + interval.interval_s)
        # Merged each interval, so memory follows the distinct stacks, not the run's length.
        self.stacks = merge_stacks((*self.stacks, *interval.stacks))

    def encode(self, export_format: str) -> bytes:
        meta = self.meta or ProfileMeta()
        return encode(export_format, self.stacks, meta, name=f"perftop {meta.event}")
