"""Unresolved reasons: one member per reason, remedies by member, recordings by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from perftop.formats.recording import decode_interval, encode_interval, read_recording
from perftop.model.reasons import Unresolved
from perftop.model.samples import Frame
from perftop.symbols.perfmap import MAX_MAP_BYTES

DATA = Path(__file__).parent.parent / "data"


def test_every_member_has_its_own_text() -> None:
    texts = [member.text for member in Unresolved]
    assert len(set(texts)) == len(texts) and all(texts)


@pytest.mark.parametrize(
    ("old_text", "member"),
    [
        ("stripped binary", Unresolved.STRIPPED),
        ("no symbol covers this address", Unresolved.NO_COVERING_SYMBOL),
        ("JIT without a perf map", Unresolved.JIT),
        ("unreadable ELF (ELFError)", Unresolved.UNREADABLE_ELF),
        (
            "perf map owned by uid 65534, not the process's user (refused)",
            Unresolved.PERF_MAP_FOREIGN_OWNER,
        ),
        ("perf map larger than 64 MiB (refused)", Unresolved.PERF_MAP_TOO_LARGE),
        ("cosmic rays", Unresolved.UNKNOWN),
    ],
)
def test_texts_of_older_recordings_map_to_members(old_text: str, member: Unresolved) -> None:
    assert Unresolved.from_text(old_text) is member


def test_the_perf_map_cap_is_the_one_the_reason_names() -> None:
    assert f"{MAX_MAP_BYTES >> 20} MiB" in Unresolved.PERF_MAP_TOO_LARGE.text


def test_a_recording_of_the_text_era_still_replays_with_members() -> None:
    # tests/data/session.jsonl was recorded when reasons were free text.
    frames = {f for s in read_recording(DATA / "session.jsonl") for t in s.stacks for f in t.frames}
    reasons = {frame.unresolved_reason for frame in frames} - {None}
    assert Unresolved.JIT in reasons and Unresolved.NO_COVERING_SYMBOL in reasons
    assert Unresolved.UNKNOWN not in reasons


def test_recordings_store_the_member_name_and_read_it_back() -> None:
    snapshot = read_recording(DATA / "synthetic.jsonl")[0]
    encoded = encode_interval(snapshot)
    assert ["libfoo.so+0x1a2b", "libfoo.so", False, "STRIPPED"] in encoded["frames"]
    assert decode_interval(encoded) == snapshot


def test_frames_with_a_member_hash_and_compare_by_value() -> None:
    one = Frame("x", "y", False, Unresolved.JIT)
    assert {one: 1}[Frame("x", "y", False, Unresolved.JIT)] == 1
    assert one != Frame("x", "y", False, Unresolved.GONE) and one != Frame("x", "y", False)
