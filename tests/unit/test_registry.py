"""One registry of output formats, read by the CLI, the export dialog and the export files."""

from __future__ import annotations

import pytest

from perftop.cli.main import build_parser
from perftop.formats.exports import ProfileMeta
from perftop.formats.files import encode
from perftop.formats.registry import EXPORT_FORMATS, EXTENSIONS, FORMATS, OutputKind, output_format
from tests.unit.factories import stack, user


def test_the_command_line_offers_every_format_and_says_which_wait_for_the_exit() -> None:
    action = next(a for a in build_parser()._actions if a.dest == "format")
    assert (
        list(action.choices or ())
        == list(FORMATS)
        == ["text", "json", "folded", "speedscope", "pprof"]
    )
    assert action.help == "batch output format; folded, speedscope and pprof are written at exit"


def test_kinds_decide_where_a_format_goes() -> None:
    assert [name for name, f in FORMATS.items() if f.needs_output_file] == ["speedscope", "pprof"]
    assert FORMATS["folded"].kind is OutputKind.FOLDED and not FORMATS["folded"].needs_output_file
    assert EXPORT_FORMATS == ("folded", "speedscope", "pprof")
    assert EXTENSIONS == {"folded": ".folded", "speedscope": ".speedscope.json", "pprof": ".pb.gz"}


def test_each_writer_answers_for_its_kind_only() -> None:
    stacks = (stack(user("main"), samples=2),)
    assert FORMATS["folded"].encode_profile(stacks, ProfileMeta()) == encode(
        "folded", stacks, ProfileMeta()
    )
    with pytest.raises(ValueError, match="not a profile format"):
        FORMATS["text"].encode_profile(stacks, ProfileMeta())
    with pytest.raises(ValueError, match="unknown export format"):
        encode("json", stacks, ProfileMeta())
    with pytest.raises(ValueError, match="known: text, json"):
        output_format("xml")
