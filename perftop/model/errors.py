"""The exceptions every layer may raise to end in one line for the user.

They live at the bottom so that a layer can raise or catch them without importing the layer
that used to own them: a recording that cannot be read is a SourceError to whoever replays
it, yet perftop.formats imports nothing of perftop.sampling.
"""

from __future__ import annotations


class PerftopError(Exception):
    """A failure to tell the user in one line (no traceback)."""


class SourceError(PerftopError):
    """Where the intervals come from failed (the sampler, a recording being replayed)."""
