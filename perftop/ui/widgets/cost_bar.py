"""The cost bar: perftop's own footprint and the kernel headers it was built with."""

from __future__ import annotations

from textual.widgets import Static

from perftop.model.samples import Interval
from perftop.ui.widgets.header import pieces_content
from perftop.viewmodel import cost_pieces


class CostBar(Static):
    def show(self, latest: Interval | None) -> None:
        pieces = cost_pieces(latest, compact=self.size.width < 120)
        self.update(pieces_content(pieces), layout=False)  # one line, fixed (perftop.tcss)
