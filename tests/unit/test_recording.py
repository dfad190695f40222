"""Recordings (JSON lines) and their replay as a IntervalSource."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from perftop.formats.recording import (
    FrameMemo,
    RecordingError,
    RecordingWriter,
    decode_interval,
    encode_interval,
    read_recording,
)
from perftop.model.reasons import Unresolved
from perftop.model.samples import (
    CpuStat,
    Frame,
    FrameKind,
    Interval,
    NativeCode,
    ProcessInfo,
    ProcessMapping,
    PythonCode,
    SamplerCost,
    StackSample,
    python_frame,
)
from perftop.profile.view import build_view
from perftop.sampling.replay import NOT_IN_REPLAY, ReplaySource
from perftop.sampling.source import SourceError

SHARED = (Frame("main", "app", False), Frame("work", "app", False))
STRIPPED = Frame("libfoo.so+0x1a2b", "libfoo.so", False, Unresolved.STRIPPED)
HOSTILE_PYTHON = python_frame(
    PythonCode("Evil.\x1b[31m[bold]x[/bold];run\udcff", "/srv/ev\x1bil.py", 3, None)
)
PYTHON = (python_frame(PythonCode("Handler.run", "/srv/app/handler.py", 40, 42)), HOSTILE_PYTHON)


def full_snapshot(number: int = 0) -> Interval:
    """Every field set to something other than its default."""
    return Interval(
        timestamp=1_700_000_000.5 + number,
        interval_s=1.002,
        event="cycles",
        frequency_hz=199,
        lost={"stack_errors": 2, "counts_full": 0},
        cpus=(CpuStat(0, 20, 3), CpuStat(1, 10 + number, 4)),
        stacks=(
            StackSample(10, 11, "app\x1b[31m", (*SHARED, STRIPPED), 20, 2000),
            StackSample(
                10, 12, "app", (*SHARED, Frame("read", "[kernel]", True)), 10 + number, 1000
            ),
            StackSample(20, 20, "idle\udcff", (), 0, 0),
            StackSample(10, 13, "app", (*SHARED, *PYTHON, Frame("read", "[kernel]", True)), 3, 300),
        ),
        processes={
            10: ProcessInfo(10, "bob", "app -x", 2, 9.5, 4096, name="app"),
            20: ProcessInfo(20, exited=True, kernel_thread=True),
        },
        stack_mode="user",
        python_frames=False,
        pid_filter=(10, 20),
        headers="/usr/src/linux-headers-6.8.0",
        cost=SamplerCost(1.25, None, 300.0, 5, 100, 6, 200, 2.5, 1.75),
        notices=("event 'cycles' cannot be sampled here",),
    )


def write(path: Path, *snapshots: Interval) -> Path:
    with RecordingWriter(path) as writer:
        for snapshot in snapshots:
            writer.write(snapshot)
    return path


# Encoding -----------------------------------------------------------------------------------


def test_a_snapshot_survives_the_round_trip_through_json() -> None:
    snapshot = full_snapshot()
    line = json.dumps(encode_interval(snapshot))
    assert decode_interval(json.loads(line)) == snapshot


def test_where_native_frames_are_and_the_mappings_round_trip() -> None:
    code = NativeCode("/opt/b/chain", "bb22", 0x1100, "/opt/b/chain.c", 7)
    main = Frame("main", "b/chain", False, None, None, code)
    syscall = Frame("read", "[kernel]", True, None, None, NativeCode("[kernel.kallsyms]", "", 1))
    mapping = ProcessMapping("/opt/b/chain", "bb22", 0x5600_0000_1000, 0x5600_0000_2000, 0x1000)
    snapshot = replace(
        full_snapshot(),
        stacks=(StackSample(10, 10, "chain", (main, syscall), 3, 30),),
        mappings={10: (mapping,)},
    )
    encoded = json.loads(json.dumps(encode_interval(snapshot)))
    assert encoded["format"] == "perftop-recording/4"
    decoded = decode_interval(encoded)
    assert decoded == snapshot and decoded.stacks[0].frames[0].native == code
    assert decoded.mappings == {10: (mapping,)}
    encoded["frames"][0][5][2] = "0x1100"
    with pytest.raises(RecordingError, match="'frame native offset' has the wrong type"):
        decode_interval(encoded)


def test_frames_are_stored_once_per_line() -> None:
    encoded = encode_interval(full_snapshot())
    # main, work, the stripped one, read, two Python functions
    assert len(encoded["frames"]) == 6
    assert encoded["stacks"][0][3] == [0, 1, 2]
    assert encoded["stacks"][3][3] == [0, 1, 4, 5, 3]


def test_python_frames_round_trip_field_by_field() -> None:
    snapshot = full_snapshot()
    decoded = decode_interval(json.loads(json.dumps(encode_interval(snapshot))))
    assert decoded.python_frames is False
    (recorded,) = (s for s in decoded.stacks if s.tid == 13)
    for frame, original in zip(recorded.frames, snapshot.stacks[3].frames, strict=True):
        for name in Frame._fields:
            assert getattr(frame, name) == getattr(original, name), name
        assert frame.kind == original.kind
    assert [frame.kind for frame in recorded.frames] == [
        FrameKind.NATIVE,
        FrameKind.NATIVE,
        FrameKind.PYTHON,
        FrameKind.PYTHON,
        FrameKind.KERNEL,
    ]
    assert recorded.frames[2].python == PythonCode("Handler.run", "/srv/app/handler.py", 40, 42)
    assert recorded.frames[3].python == HOSTILE_PYTHON.python  # the line unknown: None
    walked = replace(snapshot, python_frames=True)
    assert decode_interval(encode_interval(walked)).python_frames is True


def test_native_frames_keep_four_values_and_python_ones_add_their_code() -> None:
    frames = encode_interval(full_snapshot())["frames"]
    assert frames[0] == ["main", "app", False, None]
    assert frames[4] == [
        "Handler.run (handler.py:40)",
        "/srv/app/handler.py",
        False,
        None,
        ["Handler.run", "/srv/app/handler.py", 40, 42],
    ]


def test_recordings_made_before_python_frames_still_read() -> None:
    data = json.loads(json.dumps(encode_interval(full_snapshot())))
    del data["python_frames"]
    data["frames"][0].append(None)  # a fifth value of null: no Python code
    decoded = decode_interval(data)
    assert decoded.python_frames is True  # no claim: the replay's header shows no "off"
    assert decoded.stacks[0].frames[0] == Frame("main", "app", False)
    session = read_recording(Path(__file__).parents[1] / "data" / "session.jsonl")
    assert all(s.python_frames for s in session)
    assert all(f.python is None for s in session for t in s.stacks for f in t.frames)
    assert build_view(session[0]).functions  # and it still aggregates


def test_an_empty_interval_round_trips() -> None:
    empty = replace(full_snapshot(), stacks=(), processes={}, cpus=(), lost={})
    assert decode_interval(encode_interval(empty)) == empty


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.pop("event"), "missing field 'event'"),
        (lambda d: d.update(frequency_hz="12"), "'frequency_hz' has the wrong type"),
        (lambda d: d.update(frequency_hz=True), "'frequency_hz' should be a number"),
        (lambda d: d.update(interval_s=None), "'interval_s' should be a finite number"),
        (lambda d: d["stacks"][0][3].append(99), "frame 99, which is not in 'frames'"),
        (lambda d: d["stacks"][0][3].append(-1), "frame -1, which is not in 'frames'"),
        (lambda d: d["stacks"][0][3].append(True), "frame True, which is not in 'frames'"),
        (lambda d: d["stacks"][0][3].append(1.0), "frame 1.0, which is not in 'frames'"),
        (lambda d: d["stacks"][0].__setitem__(3, "0"), "'stack frames' has the wrong type"),
        (lambda d: d["stacks"][0].__setitem__(0, True), "'stack pid' should be a number"),
        (lambda d: d["stacks"][0].__setitem__(1, "7"), "'stack tid' has the wrong type"),
        (lambda d: d["stacks"][0].__setitem__(2, 7), "'stack comm' has the wrong type"),
        (lambda d: d["stacks"][0].__setitem__(4, None), "'stack samples' has the wrong type"),
        (lambda d: d["stacks"][0].__setitem__(5, 1.5), "'stack period' has the wrong type"),
        (lambda d: d["stacks"].append([1, 2]), "each entry of 'stacks' should be a list of 6"),
        (lambda d: d.update(format="something/9"), "not a perftop recording line"),
        (lambda d: d["processes"][0]["info"].pop("user"), "missing field 'user'"),
        (lambda d: d.update(python_frames=1), "'python_frames' has the wrong type"),
        (lambda d: d["frames"][0].extend([None] * 3), "'frames' should be a list of 4 to 6"),
        (lambda d: d["frames"][4].__setitem__(4, "f"), "'frame python' should be a list of 4"),
        (lambda d: d["frames"][4][4].pop(), "'frame python' should be a list of 4"),
        (lambda d: d["frames"][4][4].__setitem__(0, 7), "'frame python qualname' has the wrong"),
        (lambda d: d["frames"][4][4].__setitem__(1, None), "'frame python filename' has the"),
        (lambda d: d["frames"][4][4].__setitem__(2, "40"), "'frame python first_line' has the"),
        (lambda d: d["frames"][4][4].__setitem__(2, True), "'frame python first_line' should be"),
        (lambda d: d["frames"][4][4].__setitem__(3, 4.5), "'frame python line' has the wrong"),
        (lambda d: d["frames"][4].__setitem__(2, True), "kernel frame .* has Python code"),
    ],
)
def test_damage_is_reported_not_raised_as_a_crash(damage: object, message: str) -> None:
    data = json.loads(json.dumps(encode_interval(full_snapshot())))
    damage(data)  # type: ignore[operator]
    with pytest.raises(RecordingError, match=message):
        decode_interval(data)


def test_a_memo_shares_frames_across_intervals_and_keeps_true_apart_from_one() -> None:
    data = json.loads(json.dumps(encode_interval(full_snapshot())))
    memo = FrameMemo()
    first, second = decode_interval(data, memo), decode_interval(data, memo)
    assert first == second == decode_interval(data)
    assert all(
        a is b
        for x, y in zip(first.stacks, second.stacks, strict=True)
        for a, b in zip(x.frames, y.frames, strict=True)
    )
    # JSON's true and 1 are equal keys in a dict: the memo must not hand one out for the other.
    kernel = ["sym", "mod", True, None]
    user = ["sym", "mod", 1, None]
    assert memo.decode(kernel).kernel is True
    with pytest.raises(RecordingError, match="'frame kernel' has the wrong type"):
        memo.decode(user)


def test_a_full_memo_starts_over() -> None:
    memo = FrameMemo(limit=2)
    frames = [memo.decode([f"s{i}", "m", False, None]) for i in range(5)]
    assert [f.symbol for f in frames] == [f"s{i}" for i in range(5)]
    assert len(memo._frames) <= 2


# Files --------------------------------------------------------------------------------------


def test_writer_and_reader(tmp_path: Path) -> None:
    snapshots = [full_snapshot(i) for i in range(3)]
    path = write(tmp_path / "s.jsonl", *snapshots)
    assert read_recording(path) == snapshots
    assert len(path.read_text().splitlines()) == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # command lines may hold secrets


def test_a_damaged_python_frame_in_a_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", full_snapshot(0), full_snapshot(1))
    first, second = path.read_text().splitlines()
    data = json.loads(second)
    data["frames"][4][4][2] = "forty"
    path.write_text(first + "\n" + json.dumps(data) + "\n")
    with pytest.raises(RecordingError) as raised:
        read_recording(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:2: 'frame python first_line' has the wrong type")
    assert "\n" not in message


def test_writer_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("precious")
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(path)
    assert path.read_text() == "precious"


@pytest.mark.parametrize("target_exists", [True, False])
def test_writer_never_follows_a_symlink(tmp_path: Path, target_exists: bool) -> None:
    target = tmp_path / "target"
    if target_exists:
        target.write_text("precious")
    link = tmp_path / "s.jsonl"
    link.symlink_to(target)
    with pytest.raises(RecordingError):
        RecordingWriter(link)
    assert target.exists() == target_exists
    if target_exists:
        assert target.read_text() == "precious"


def test_writer_in_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot create"):
        RecordingWriter(tmp_path / "no" / "s.jsonl")


def test_non_finite_numbers_are_refused_rather_than_written_as_invalid_json(
    tmp_path: Path,
) -> None:
    with RecordingWriter(tmp_path / "s.jsonl") as writer, pytest.raises(RecordingError):
        writer.write(replace(full_snapshot(), interval_s=float("nan")))


def test_a_line_cut_by_a_crash_at_the_end_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", full_snapshot(0), full_snapshot(1))
    text = path.read_text()
    path.write_text(text + text.splitlines()[0][:50])
    assert len(read_recording(path)) == 2


def test_a_bad_line_in_the_middle_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", full_snapshot(0), full_snapshot(1))
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n{not json\n" + lines[1] + "\n")
    with pytest.raises(SourceError, match=r"s\.jsonl:2: not JSON"):
        read_recording(path)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xff\xfe garbage\n"])
def test_empty_or_binary_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(content)
    with pytest.raises(SourceError):
        read_recording(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        read_recording(tmp_path / "nope.jsonl")


# Replay -------------------------------------------------------------------------------------


def recording(tmp_path: Path, count: int = 3) -> Path:
    snapshots = [replace(full_snapshot(i), notices=(), pid_filter=()) for i in range(count)]
    return write(tmp_path / "s.jsonl", *snapshots)


def drain(source: ReplaySource) -> list[Interval]:
    played = []
    while (snapshot := source.next_interval()) is not None:
        played.append(snapshot)
    return played


def test_replay_plays_every_snapshot_then_ends(tmp_path: Path) -> None:
    path = recording(tmp_path)
    source = ReplaySource(path, interval_s=0)
    assert not source.live
    assert (source.event, source.frequency_hz) == ("cycles", 199)
    assert drain(source) == read_recording(path)
    assert source.next_interval() is None


def test_replay_loops(tmp_path: Path) -> None:
    source = ReplaySource(recording(tmp_path, 2), interval_s=0, loop=True)
    samples = [source.next_interval().samples for _ in range(5)]  # type: ignore[union-attr]
    assert samples == [33, 34, 33, 34, 33]


def test_replay_refuses_a_bad_file_before_anything_starts(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("")
    with pytest.raises(SourceError, match="no snapshots"):
        ReplaySource(path)
    good = tmp_path / "good"
    good.mkdir()
    with pytest.raises(SourceError, match="negative"):
        ReplaySource(recording(good), interval_s=-1)


def test_replay_pid_filter_recomputes_processes_and_functions(tmp_path: Path) -> None:
    source = ReplaySource(recording(tmp_path), interval_s=0)
    source.set_pid_filter([20])
    snapshot = source.next_interval()
    assert snapshot is not None
    assert [s.pid for s in snapshot.stacks] == [20]
    view = build_view(snapshot)
    assert [p.pid for p in view.processes] == [20]
    assert view.functions == ()
    assert snapshot.pid_filter == (20,)
    source.set_pid_filter([])
    unfiltered = source.next_interval()
    assert unfiltered is not None
    assert [p.pid for p in build_view(unfiltered).processes] == [10, 20]


def test_replay_kernel_controls_answer_in_the_next_interval(tmp_path: Path) -> None:
    source = ReplaySource(recording(tmp_path), interval_s=0)
    source.set_event("instructions")
    source.set_frequency(499)
    source.set_stack_mode("kernel")
    source.set_python_frames(False)
    notices = source.next_interval().notices  # type: ignore[union-attr]
    assert len(notices) == 4 and all(NOT_IN_REPLAY in notice for notice in notices)
    assert f"Python frames off: {NOT_IN_REPLAY}" in notices
    assert source.next_interval().notices == ()  # type: ignore[union-attr]


def test_replay_offers_only_the_recorded_event(tmp_path: Path) -> None:
    events = ReplaySource(recording(tmp_path)).events()
    assert events["cycles"] is None
    assert "cycles samples only" in (events["cpu-clock"] or "")


def test_replay_keeps_the_recorded_pace_and_close_interrupts_it(tmp_path: Path) -> None:
    source = ReplaySource(recording(tmp_path), interval_s=30)
    started = time.monotonic()
    assert source.next_interval() is not None  # the first one at once
    threading.Timer(0.2, source.close).start()
    assert source.next_interval() is None  # woken by close, not after 30 s
    assert time.monotonic() - started < 5


def test_recording_file_descriptor_is_not_inherited(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "s.jsonl") as writer:
        assert os.get_inheritable(writer._file.fileno()) is False


def test_recordings_made_before_drain_cpu_ms_still_read() -> None:
    data = encode_interval(full_snapshot())
    del data["cost"]["drain_cpu_ms"]
    assert decode_interval(data).cost.drain_cpu_ms == 0.0


def test_writer_refuses_a_planted_fifo_without_blocking(tmp_path: Path) -> None:
    # The recording shares the exports' safe open: O_NONBLOCK, then a regular-file check.
    fifo = tmp_path / "s.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(RecordingError, match="not a regular file"):
        RecordingWriter(fifo)


def test_an_unknown_stack_mode_is_damage_said_in_one_line() -> None:
    encoded = encode_interval(
        read_recording(Path(__file__).parents[1] / "data" / "synthetic.jsonl")[0]
    )
    encoded["stack_mode"] = "sideways"
    with pytest.raises(RecordingError, match="'stack_mode' is not one of both, kernel, user"):
        decode_interval(encoded)
