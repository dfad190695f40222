"""How a frame's kind looks wherever frames are styled (the call-stack pane, the flame graph's
detail line): one rule, so a Python frame reads the same in both."""

from __future__ import annotations

from rich.style import Style

from perftop.model.samples import FrameKind

# The marks are dim, as perf's are; a Python frame's is green, the one hue the theme does not
# already use for a meaning here (yellow: no symbol; the accent: a filter in force), so the
# Python part of a stack stands out from the interpreter's C frames around it.
MARK_STYLES = {
    FrameKind.NATIVE: Style(dim=True),
    FrameKind.KERNEL: Style(dim=True),
    FrameKind.PYTHON: Style(color="green"),
}


def mark_style(kind: FrameKind) -> Style:
    return MARK_STYLES[kind]
