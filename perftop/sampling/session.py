"""One sampling session: source -> recorder -> accumulation -> whoever consumes the intervals.

Both the screen's sampler worker and batch mode iterate the same session, as py-spy's `Sampler`
feeds both its console viewer and its recorders: the recording and the accumulation see every
interval, even those a slow screen skips.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from perftop.formats.recording import RecordingError, RecordingWriter
from perftop.model.samples import Interval
from perftop.profile.accumulate import DEFAULT_DECAY_KEEP, DecayingAccumulation
from perftop.sampling.source import IntervalSource


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    latest: Interval  # as sampled
    accumulated: Interval  # the decaying accumulation that includes it
    recording_error: str | None = None  # the recording stopped here; sampling goes on


class SamplingSession:
    """Iterate for one update per interval until the source ends (SourceError propagates).

    `zero()` may be called from another thread: the accumulation restarts at the next interval.
    """

    def __init__(
        self,
        source: IntervalSource,
        *,
        recorder: RecordingWriter | None = None,
        decay_keep: float = DEFAULT_DECAY_KEEP,
        accumulate: bool = True,
    ) -> None:
        self.source = source
        self._recorder = recorder
        # Batch reports read the latest interval only: no accumulation kept for nothing.
        self._accumulation = DecayingAccumulation(decay_keep) if accumulate else None
        self._zero_requested = threading.Event()

    def zero(self) -> None:
        self._zero_requested.set()

    def __iter__(self) -> Iterator[SessionUpdate]:
        while True:
            interval = self.source.next_interval()
            if interval is None:
                return
            error = self._record(interval)
            accumulation = self._accumulation
            if accumulation is None:
                yield SessionUpdate(interval, interval, error)
                continue
            if self._zero_requested.is_set():
                self._zero_requested.clear()
                accumulation.reset()
            yield SessionUpdate(interval, accumulation.add(interval), error)

    def _record(self, interval: Interval) -> str | None:
        if self._recorder is None:
            return None
        try:
            self._recorder.write(interval)
        except RecordingError as error:
            self._recorder = None
            return str(error)
        return None
