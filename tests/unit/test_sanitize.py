from __future__ import annotations

from perftop.sanitize import decode, printable


def test_escape_sequences_become_visible() -> None:
    assert printable("\x1b]0;owned\x07") == "\\x1b]0;owned\\x07"
    assert printable("a\nb\tc\x7f\x9b") == "a\\x0ab\\x09c\\x7f\\x9b"


def test_bidi_overrides_and_zero_width_are_escaped() -> None:
    assert printable("abc\u202edcba\u2066") == "abc\\u202edcba\\u2066"
    assert printable("x\u200by") == "x\\u200by"


def test_markup_is_left_as_text() -> None:
    # Markup safety comes from building rich Text, not from mangling brackets.
    assert printable("[bold red]x[/]") == "[bold red]x[/]"


def test_lone_surrogates_and_long_strings() -> None:
    assert printable("a\udcffb") == "a\\udcffb"
    assert printable("x" * 50, limit=10) == "x" * 9 + "…"


def test_decode_never_raises_and_stops_at_nul() -> None:
    assert decode(b"comm\xff\xfe\0garbage") == "comm\ufffd\ufffd"
