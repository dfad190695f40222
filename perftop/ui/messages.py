"""Messages from the sampler thread to the screen: the only things that cross threads."""

from __future__ import annotations

from textual.message import Message

from perftop.model.samples import Interval
from perftop.model.stats import View


class IntervalReady(Message):
    """One interval: as sampled, the decaying accumulation that includes it, and the view the
    screen's options asked for when the sampler thread built it (None: build it here)."""

    def __init__(self, latest: Interval, accumulated: Interval, view: View | None) -> None:
        super().__init__()
        self.latest = latest
        self.accumulated = accumulated
        self.view = view

    def can_replace(self, message: Message) -> bool:
        # Textual asks the older queued message whether the next one may take its place: a screen
        # that falls behind only draws the newest interval. The accumulation already counted the
        # skipped ones (it runs on the sampler thread), so nothing is lost but notices; a message
        # that carries notices is never skipped, so every failure still reaches the user.
        return isinstance(message, IntervalReady) and not self.latest.notices


class SourceEnded(Message):
    """The source has no more intervals (the end of a recording)."""


class SourceFailed(Message):
    """The source cannot go on; `error` is one line for the user."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class RecordingFailed(Message):
    """Writing the recording failed; sampling and the screen go on without it."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
