"""Every output format perftop writes, in one table: its name, file extension, when it is
written, a line for the user, and its writer. The CLI's --format, the export dialog and the
export files all read this table, so a new format is one entry here.

Two kinds of writer, because the formats are of two kinds: a report of one interval (text,
JSON lines) is text for the stream; a profile of many intervals (folded stacks, speedscope,
pprof) is bytes, made from merged stacks once, at exit or when the user exports.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from perftop.formats.meta import ProfileMeta
from perftop.model.samples import StackSample
from perftop.model.stats import View

# (one interval, rows per table) -> the text written to the stream for it
IntervalWriter = Callable[[View, int], str]
# (the run's or the view's stacks, what was sampled, the profile's name) -> the file's bytes
ProfileWriter = Callable[[Sequence[StackSample], ProfileMeta, str], bytes]


class OutputKind(Enum):
    PER_INTERVAL = "per-interval"  # a report on the stream after each interval
    FOLDED = "folded"  # stacks summed over the run, on the stream (or -o FILE) at exit
    PROFILE = "profile"  # one profile of the whole run, binary or JSON: -o FILE is required


@dataclass(frozen=True, slots=True)
class OutputFormat:
    name: str
    extension: str  # what a file of it is named with; the readers do not care, people do
    kind: OutputKind
    description: str  # one line, shown by the export dialog
    interval_writer: IntervalWriter | None = None  # PER_INTERVAL formats
    profile_writer: ProfileWriter | None = None  # FOLDED and PROFILE formats: also exportable

    @property
    def exportable(self) -> bool:
        """Can be written from the screen (`x`, `f` then `x`): it is made from stacks."""
        return self.profile_writer is not None

    @property
    def needs_output_file(self) -> bool:
        """Not text for a terminal or a pipe: batch mode writes it to -o FILE only."""
        return self.kind is OutputKind.PROFILE

    def write_interval(self, view: View, top: int) -> str:
        if self.interval_writer is None:
            raise ValueError(f"{self.name} is not written per interval")
        return self.interval_writer(view, top)

    def encode_profile(
        self, stacks: Sequence[StackSample], meta: ProfileMeta, name: str = "perftop"
    ) -> bytes:
        if self.profile_writer is None:
            raise ValueError(f"{self.name} is not a profile format")
        return self.profile_writer(stacks, meta, name)


# Each writer imports its encoder when first called: the command line and the screen read the
# registry at start-up, and none of the encoders is needed before the first screen.


def _text(view: View, top: int) -> str:
    from perftop.formats.output import format_text

    return format_text(view, top) + "\n"


def _json(view: View, top: int) -> str:
    from perftop.formats.output import format_json

    return format_json(view)  # every row: JSON is for programs, which filter themselves


def _folded(stacks: Sequence[StackSample], meta: ProfileMeta, name: str) -> bytes:
    """Names made printable: the format is text for terminals and scripts."""
    from perftop.formats.output import FoldedAccumulator

    folded = FoldedAccumulator(process_roots=meta.process_roots)
    folded.add(stacks)
    text = io.StringIO()
    folded.write(text)
    return text.getvalue().encode("utf-8", "replace")


def _pprof(stacks: Sequence[StackSample], meta: ProfileMeta, name: str) -> bytes:
    from perftop.formats.pprof import pprof_bytes

    return pprof_bytes(stacks, meta)


def _speedscope(stacks: Sequence[StackSample], meta: ProfileMeta, name: str) -> bytes:
    from perftop.formats.speedscope import speedscope_bytes

    return speedscope_bytes(stacks, meta, name)


_ALL = (
    OutputFormat(
        "text",
        ".txt",
        OutputKind.PER_INTERVAL,
        "a report per interval, like perf top --stdio",
        interval_writer=_text,
    ),
    OutputFormat(
        "json",
        ".jsonl",
        OutputKind.PER_INTERVAL,
        "one JSON object per interval (JSON lines)",
        interval_writer=_json,
    ),
    OutputFormat(
        "folded",
        ".folded",
        OutputKind.FOLDED,
        "text, one stack a line: flamegraph.pl, inferno, speedscope",
        profile_writer=_folded,
    ),
    # speedscope and pprof carry the exact strings, escaped by their encodings.
    OutputFormat(
        "speedscope",
        ".speedscope.json",
        OutputKind.PROFILE,
        "JSON for speedscope.app: the whole view, then each process",
        profile_writer=_speedscope,
    ),
    OutputFormat(
        "pprof",
        ".pb.gz",
        OutputKind.PROFILE,
        "gzipped profile.proto: go tool pprof and its readers",
        profile_writer=_pprof,
    ),
)

FORMATS: Mapping[str, OutputFormat] = {output.name: output for output in _ALL}
# What the screen can export, in the order its dialog lists them.
EXPORT_FORMATS: tuple[str, ...] = tuple(output.name for output in _ALL if output.exportable)
EXTENSIONS: Mapping[str, str] = {name: FORMATS[name].extension for name in EXPORT_FORMATS}


def output_format(name: str) -> OutputFormat:
    """The format named `name`; ValueError names the known ones otherwise."""
    found = FORMATS.get(name)
    if found is None:
        raise ValueError(f"unknown output format {name!r} (known: {', '.join(FORMATS)})")
    return found
