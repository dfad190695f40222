"""Make strings from other processes safe to print.

Process names, command lines, symbols and paths are written by whoever owns the process. Rich and
Textual strip only a few control characters (ESC passes through), and Textual parses plain strings
as markup, so every such string goes through `printable` and is then shown as `rich.text.Text`.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and the bidirectional overrides/isolates that can reorder
# what follows them on screen (the "Trojan Source" characters), plus zero-width characters
# used to hide text.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, limit: int | None = None) -> str:
    """`text` with every control or reordering character shown as a visible escape (`\\x1b`).

    Invalid UTF-8 has already become U+FFFD or surrogate escapes at decode time; lone surrogates
    cannot be encoded to the terminal, so they are escaped too.
    """
    safe = _UNSAFE.sub(_escape, text)
    if any("\ud800" <= ch <= "\udfff" for ch in safe):
        safe = "".join(f"\\u{ord(ch):04x}" if "\ud800" <= ch <= "\udfff" else ch for ch in safe)
    if limit is not None and len(safe) > limit:
        safe = safe[: max(limit - 1, 0)] + "…"
    return safe


def decode(raw: bytes) -> str:
    """Decode bytes from the kernel or /proc once, at the boundary; never raises."""
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
