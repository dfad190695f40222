"""The cost bar: perftop's own footprint and the kernel headers it was built with."""

from __future__ import annotations

from textual.widgets import Static

from perftop.model.samples import Interval
from perftop.ui.widgets.header import pieces_content
from perftop.viewmodel import fitted_cost_pieces


class CostBar(Static):
    def show(self, latest: Interval | None) -> None:
        pieces = fitted_cost_pieces(latest, self.size.width)
        self.update(pieces_content(pieces), layout=False)  # one line, fixed (perftop.tcss)
