"""The cost bar: perftop's own footprint and the kernel headers it was built with."""

from __future__ import annotations

from textual.widgets import Static

from perftop.model.samples import Interval
from perftop.ui.widgets.header import pieces_content
from perftop.viewmodel import Piece, fitted_cost_pieces


class CostBar(Static):
    """Redrawn only when a piece of it changed: an update of a Static renders it whole."""

    _shown: tuple[Piece, ...] | None = None

    def show(self, latest: Interval | None) -> None:
        pieces = tuple(fitted_cost_pieces(latest, self.size.width))
        if pieces == self._shown:
            return
        self._shown = pieces
        self.update(pieces_content(pieces), layout=False)  # one line, fixed (perftop.tcss)
