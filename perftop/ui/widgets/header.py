"""The header: what is sampled and how fast (line 1), where from and what is filtered (line 2)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import Static

from perftop.model.samples import Interval
from perftop.viewmodel import Piece, PieceKind, ViewOptions, filter_pieces, status_pieces

# Theme variables, so the header follows the theme; 16-colour terminals get the nearest colour.
PIECE_STYLES = {
    PieceKind.LABEL: "dim",
    PieceKind.VALUE: "",
    PieceKind.ACTIVE: "$accent bold",
    PieceKind.WARN: "$warning bold",
}


def pieces_content(pieces: Sequence[Piece]) -> Content:
    """Pieces joined by two spaces. Content.assemble takes the text literally: no markup."""
    parts: list[str | tuple[str, str]] = []
    for index, piece in enumerate(pieces):
        if index:
            parts.append("  ")
        parts.append((piece.text, PIECE_STYLES.get(piece.kind, "")))
    return Content.assemble(*parts)


class HeaderBar(Static):
    """Redrawn only when a piece of it changed: an update of a Static renders it whole."""

    _shown: tuple[tuple[Piece, ...], ...] | None = None

    def show(
        self,
        latest: Interval | None,
        options: ViewOptions,
        *,
        live: bool,
        ended: bool,
        zoom_comm: str = "",
        zoom_cgroup_name: str = "",
    ) -> None:
        cpu_width = max(8, self.size.width // 4)
        lines = (
            tuple(status_pieces(latest, cpu_width=cpu_width)),
            tuple(
                filter_pieces(
                    options,
                    latest,
                    zoom_comm,
                    live=live,
                    ended=ended,
                    zoom_cgroup_name=zoom_cgroup_name,
                )
            ),
        )
        if lines == self._shown:
            return
        self._shown = lines
        # Its height is fixed (perftop.tcss): no layout of the whole screen for a new line.
        self.update(Content("\n").join([pieces_content(line) for line in lines]), layout=False)
