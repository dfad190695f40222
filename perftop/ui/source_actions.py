"""The keys that change what the kernel samples (event, stack kind, Python frames, frequency):
each goes to the source, which applies it at the next interval; a recording can change none
of them."""

from __future__ import annotations

from dataclasses import replace

from textual.app import App

from perftop.sampling.replay import NOT_IN_REPLAY
from perftop.sampling.source import IntervalSource
from perftop.sanitize import printable
from perftop.ui.widgets.event_picker import EventPicker
from perftop.viewmodel import ViewOptions, next_frequency


class SourceControlActions(App[None]):
    """Actions of the perftop screen on its source's kernel controls (mixed into PerftopApp)."""

    source: IntervalSource
    options: ViewOptions
    _frequency: int

    def _render_view(self) -> None:
        raise NotImplementedError

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

    def action_toggle_python_frames(self) -> None:
        walk = not self.options.python_frames
        what = f"Python frames {'on' if walk else 'off'}"
        if self._refuse_in_replay(what):
            return
        self.source.set_python_frames(walk)
        self.options = replace(self.options, python_frames=walk)
        self.notify(f"{what} from the next interval", timeout=3)
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
