"""The `x` dialog: write the current view to a file, as folded stacks, speedscope or pprof.

The dialog asks for the format and the file name and does the writing through the callable it
is given, so what is written is the view as it was when `x` was pressed. An existing file is
replaced only after the user says yes; a symlink is refused whatever the user says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from perftop.formats.files import ExportError, ExportExists
from perftop.formats.registry import EXPORT_FORMATS, EXTENSIONS, FORMATS
from perftop.sanitize import printable
from perftop.viewmodel import human_bytes

# (format, path, overwrite) -> bytes written; raises ExportExists or ExportError.
WriteExport = Callable[[str, Path, bool], int]


def default_name(export_format: str, now: time.struct_time | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", now if now is not None else time.localtime())
    return f"perftop-{stamp}{EXTENSIONS[export_format]}"


def with_extension(name: str, export_format: str) -> str:
    """`name` with its format's extension when it ends in another format's; else as typed."""
    for extension in sorted(EXTENSIONS.values(), key=len, reverse=True):
        if name.endswith(extension):
            return name[: -len(extension)] + EXTENSIONS[export_format]
    return name


def format_prompt(export_format: str) -> Text:
    prompt = Text(no_wrap=True, overflow="ellipsis")
    prompt.append(f"{export_format:<11}", style="bold")
    prompt.append(FORMATS[export_format].description, style="dim")
    return prompt


class ConfirmOverwrite(ModalScreen[bool]):
    """y replaces the file, n or Esc keeps it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Replace", key_display="y"),
        Binding("n,escape", "answer(False)", "Keep", key_display="n"),
    ]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box") as box:
            box.border_title = "Replace the file?"
            box.border_subtitle = "y replace · n keep"
            yield Label(
                Text.assemble(
                    (printable(str(self._path)), "bold"), " already exists. Replace it? (y/n)"
                ),
                id="confirm-text",
            )

    def action_answer(self, replace: bool) -> None:
        self.dismiss(replace)


class ExportDialog(ModalScreen[Path | None]):
    """Dismisses with the path written, or None when cancelled. A failed write is reported and
    the dialog stays open, so the name can be fixed.

    The file name always has the focus and ↑ ↓ pick the format: no focus moves between the
    two, so keys typed quickly (or pasted) cannot land in the wrong place."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", key_display="Esc"),
        Binding("up", "format(-1)", "Format", show=False),
        Binding("down", "format(1)", "Format", show=False),
    ]

    def __init__(
        self,
        what: str,
        write: WriteExport,
        *,
        directory: Path | None = None,
        now: time.struct_time | None = None,
    ) -> None:
        super().__init__()
        self._what = what
        self._write = write
        self._directory = directory if directory is not None else Path.cwd()
        self._now = now
        self.export_format = EXPORT_FORMATS[0]

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box") as box:
            box.border_title = "Export the current view"
            box.border_subtitle = "↑↓ format · Enter write · Esc cancel"
            yield Label(Text(self._what), id="export-what")
            formats = OptionList(
                *(Option(format_prompt(name), id=name) for name in EXPORT_FORMATS),
                id="export-format",
            )
            formats.can_focus = False
            yield formats
            yield Label(
                Text.assemble(
                    ("File", "bold"),
                    " (relative to ",
                    printable(str(self._directory)),
                    "):",
                ),
                id="export-where",
            )
            yield Input(
                value=default_name(self.export_format, self._now),
                id="export-path",
                select_on_focus=False,
            )

    def on_mount(self) -> None:
        self.query_one("#export-format", OptionList).highlighted = 0
        path = self.query_one("#export-path", Input)
        path.focus()
        path.cursor_position = len(path.value)

    def action_format(self, step: int) -> None:
        index = EXPORT_FORMATS.index(self.export_format) + step
        self._choose(EXPORT_FORMATS[max(0, min(index, len(EXPORT_FORMATS) - 1))])

    def _choose(self, export_format: str) -> None:
        # At once, not through the list's message: an Enter right after ↓ writes this format.
        self.export_format = export_format
        self.query_one("#export-format", OptionList).highlighted = EXPORT_FORMATS.index(
            export_format
        )
        path = self.query_one("#export-path", Input)
        path.value = with_extension(path.value, export_format)
        path.cursor_position = len(path.value)

    @on(OptionList.OptionHighlighted, "#export-format")
    def _format_clicked(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None and event.option.id != self.export_format:
            self._choose(event.option.id)

    @on(Input.Submitted, "#export-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if not name:
            self.notify("name the file to write", severity="error", markup=False)
            return
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = self._directory / path
        self._try_write(path, overwrite=False)

    def _try_write(self, path: Path, *, overwrite: bool) -> None:
        try:
            size = self._write(self.export_format, path, overwrite)
        except ExportExists:

            def answered(replace: bool | None) -> None:
                if replace:
                    self._try_write(path, overwrite=True)

            self.app.push_screen(ConfirmOverwrite(path), answered)
            return
        except ExportError as error:
            self.notify(printable(str(error)), severity="error", timeout=10, markup=False)
            return
        self.notify(
            f"wrote {self.export_format} ({human_bytes(size)}) to {printable(str(path))}",
            title="exported",
            timeout=10,
            markup=False,
        )
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
