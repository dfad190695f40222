"""The header: what is sampled and how fast (line 1), where from and what is filtered (line 2)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import Static

from perftop.model.samples import Interval
from perftop.viewmodel import Piece, PieceKind, ViewOptions, filter_pieces, status_pieces
from perftop.viewmodel.header import says_only_defaults

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
    """Redrawn only when a piece of it changed: an update of a Static renders it whole. The
    second line is left out when it would say only the defaults (the last interval, the keys
    the footer names too): at 24 lines that is one more function row."""

    _shown: tuple[tuple[Piece, ...], ...] | None = None

    @property
    def lines(self) -> int:
        return 2 if self._shown is None else len(self._shown)

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
        status = tuple(status_pieces(latest, cpu_width=cpu_width))
        filters = tuple(
            filter_pieces(
                options,
                latest,
                zoom_comm,
                live=live,
                ended=ended,
                zoom_cgroup_name=zoom_cgroup_name,
            )
        )
        lines = (status,) if says_only_defaults(filters) else (status, filters)
        if lines == self._shown:
            return
        grown = self._shown is None or len(lines) != len(self._shown)
        self._shown = lines
        if grown:
            # The screen is laid out again only when the header gains or loses its line.
            self.styles.height = len(lines)
        # Otherwise its height is fixed: no layout of the whole screen for a new line.
        self.update(Content("\n").join([pieces_content(line) for line in lines]), layout=False)
