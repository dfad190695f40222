"""What `x` writes: the view's stacks, named for what they are of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perftop.formats.meta import ProfileMeta
from perftop.model.samples import StackSample
from perftop.model.stats import View
from perftop.sanitize import printable
from perftop.viewmodel.controls import ViewOptions


def zoomed_comm(view: View | None, options: ViewOptions) -> str:
    if view is None or options.zoom_pid is None:
        return ""
    return next((p.comm for p in view.processes if p.pid == options.zoom_pid), "")


def view_subject(view: View | None, options: ViewOptions) -> str:
    """What the view is of, in a few words: `all processes` or `PID 42 nginx`."""
    if options.zoom_pid is None:
        return "all processes"
    return f"PID {options.zoom_pid} {printable(zoomed_comm(view, options), 24)}".rstrip()


@dataclass(frozen=True, slots=True)
class ExportRequest:
    meta: ProfileMeta
    name: str  # the profile's name inside the file
    summary: str  # one line for the dialog: what will be written
    stacks: tuple[StackSample, ...]  # what is written


def export_request(
    view: View,
    options: ViewOptions,
    flame_zoom: Sequence[str] = (),
    zoomed_stacks: Sequence[StackSample] | None = None,
) -> ExportRequest:
    """What `x` writes: the view, or the flame graph's zoom (`flame_zoom`, the frames zoomed
    into, outermost first, and `zoomed_stacks`, the stacks through the innermost of them).
    The duration is the view's: an accumulation's is the decayed time its samples stand for."""
    subject = view_subject(view, options)
    stacks = tuple(view.stacks if zoomed_stacks is None else zoomed_stacks)
    if flame_zoom:
        subject += " › " + " › ".join(printable(name, 40) for name in flame_zoom)
    what = "accumulated (decaying)" if options.accumulated else "last interval"
    meta = ProfileMeta(
        event=view.event,
        frequency_hz=view.frequency_hz,
        duration_s=view.interval_s,
        start_time=view.timestamp - view.interval_s,
        mappings=view.interval.mappings,
        main_pid=options.zoom_pid,
        process_roots=options.folded_pid,
    )
    samples = sum(stack.samples for stack in stacks)
    summary = f"{subject}, {what}: {samples:,} samples in {len(stacks):,} stacks"
    if options.pids or options.text_filter:
        summary += " (filtered)"
    name = f"perftop {printable(view.event, 24)}: {subject}, {what}"
    return ExportRequest(meta, name, summary, stacks)
