"""`perftop --batch --format folded|speedscope|pprof -o FILE`: one profile of every interval,
read back by independent readers (protobuf with pprof's schema, speedscope's JSON schema,
flamegraph.pl when it is installed)."""

from __future__ import annotations

import gzip
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest

from perftop.cli.main import main
from perftop.formats.recording import read_recording

DATA = Path(__file__).parents[1] / "data"
SYNTHETIC = DATA / "synthetic.jsonl"
SCHEMA = Path(__file__).parents[1] / ".cache" / "speedscope-file-format-schema.json"


def compile_pprof_schema(out: Path) -> ModuleType:
    """pprof's profile.proto compiled by grpcio-tools' protoc: a reader that is not perftop."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{DATA}",
            f"--python_out={out}",
            "pprof_profile.proto",
        ],
        check=True,
    )
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("pprof_profile_pb2")
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="module")
def profile_pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return compile_pprof_schema(tmp_path_factory.mktemp("pb"))


def replay(*args: str) -> int:
    return main(["--batch", "--replay", str(SYNTHETIC), "-d", "0.001", *args])


@pytest.mark.parametrize("export_format", ["speedscope", "pprof"])
def test_a_profile_format_needs_a_file(
    export_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert replay("--format", export_format) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"perftop: --format {export_format} writes a file: name it with -o FILE"
    ]


def test_pprof_holds_every_interval(tmp_path: Path, profile_pb2: ModuleType) -> None:
    recorded = read_recording(SYNTHETIC)
    out = tmp_path / "out.pb.gz"
    assert replay("--format", "pprof", "-o", str(out)) == 0
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(out.read_bytes()))
    strings = list(profile.string_table)
    total = sum(stack.samples for snapshot in recorded for stack in snapshot.stacks)
    assert sum(sample.value[0] for sample in profile.sample) == total
    assert profile.duration_nanos == len(recorded) * 1_000_000_000
    functions = {function.id: strings[function.name] for function in profile.function}
    locations = {location.id: location for location in profile.location}
    mappings = {mapping.id: strings[mapping.filename] for mapping in profile.mapping}
    names = {functions[location.line[0].function_id] for location in locations.values()}
    assert {"BufferSync", "ggc_collect", "evil[/]\x1b[31m", "tcp_sendmsg [k]"} <= names
    assert {"postgres", "[kernel.kallsyms]", "libfoo.so"} <= set(mappings.values())
    assert all(location.mapping_id in mappings for location in locations.values())
    pids = {label.num for sample in profile.sample for label in sample.label}
    assert {1001, 2002, 3003, 4004, 5005, 6006} <= pids


def test_n_intervals_then_the_profile_is_written(tmp_path: Path, profile_pb2: ModuleType) -> None:
    recorded = read_recording(SYNTHETIC)[:2]
    out = tmp_path / "out.pb.gz"
    assert replay("--format", "pprof", "-o", str(out), "-n", "2") == 0
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(out.read_bytes()))
    total = sum(stack.samples for snapshot in recorded for stack in snapshot.stacks)
    assert sum(sample.value[0] for sample in profile.sample) == total
    assert profile.duration_nanos == 2_000_000_000
    assert profile.time_nanos == int((recorded[0].timestamp - 1.0) * 1e9)


def test_speedscope_validates_against_its_schema(tmp_path: Path) -> None:
    out = tmp_path / "out.speedscope.json"
    assert replay("--format", "speedscope", "-o", str(out), "-n", "2") == 0
    document = json.loads(out.read_text())
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    whole, busiest = document["profiles"][:2]
    assert document["name"] == whole["name"] == "perftop cpu-clock"  # the whole run first
    assert busiest["name"] == "python3 (pid 1001)"
    assert whole["unit"] == "nanoseconds"
    assert whole["endValue"] == sum(p["endValue"] for p in document["profiles"][1:])
    names = {frame["name"] for frame in document["shared"]["frames"]}
    assert "tcp_sendmsg [k]" in names and "[unknown]" in names


def test_folded_is_one_line_per_stack_at_exit(tmp_path: Path) -> None:
    out = tmp_path / "out.folded"
    assert replay("--format", "folded", "-o", str(out)) == 0
    lines = out.read_text().splitlines()
    assert "app;main;run_jobs;memcpy 48" in lines  # 12 samples in each of 4 intervals
    for line in lines:
        stack, count = line.rsplit(" ", 1)
        assert int(count) > 0 and all(stack.split(";"))
    assert "\x1b" not in out.read_text()


@pytest.mark.skipif(shutil.which("flamegraph.pl") is None, reason="flamegraph.pl not installed")
def test_folded_renders_with_flamegraph_pl(tmp_path: Path) -> None:
    out = tmp_path / "out.folded"
    assert replay("--format", "folded", "-o", str(out)) == 0
    svg = subprocess.run(
        ["flamegraph.pl", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert svg.lstrip().startswith("<?xml") and "BufferSync" in svg


@pytest.mark.parametrize("export_format", ["folded", "speedscope", "pprof"])
def test_an_existing_file_needs_force_and_a_symlink_is_refused(
    tmp_path: Path, export_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "out"
    existing.write_text("keep")
    assert replay("--format", export_format, "-o", str(existing)) == 2
    assert "already exists (add --force to replace it)" in capsys.readouterr().err
    assert existing.read_text() == "keep"
    assert replay("--format", export_format, "-o", str(existing), "--force", "-n", "1") == 0
    assert existing.read_bytes() != b"keep"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target")
    assert replay("--format", export_format, "-o", str(link), "--force") == 2
    assert "symlink" in capsys.readouterr().err
    assert not (tmp_path / "target").exists()


def test_folded_pid_roots_each_stack_at_comm_and_pid(tmp_path: Path) -> None:
    out = tmp_path / "out.folded"
    assert replay("--format", "folded", "--folded-pid", "-o", str(out)) == 0
    lines = out.read_text().splitlines()
    assert "app-4004;main;run_jobs;memcpy 48" in lines, lines[:5]
    roots = {line.split(";", 1)[0] for line in lines}
    assert all(root.rsplit("-", 1)[1].isdigit() for root in roots)
    assert "\x1b" not in out.read_text()


def test_folded_pid_is_for_folded_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert replay("--format", "text", "--folded-pid") == 2
    assert capsys.readouterr().err.splitlines() == ["perftop: --folded-pid is for --format folded"]


@pytest.mark.parametrize("export_format", ["folded", "speedscope", "pprof"])
def test_the_screen_and_batch_mode_write_the_same_file(tmp_path: Path, export_format: str) -> None:
    """`x` on the screen and --batch -o write one interval through the same writers."""
    from perftop.formats.files import write_export
    from perftop.profile.view import build_view
    from perftop.viewmodel.controls import ViewOptions
    from perftop.viewmodel.export import export_request

    batch = tmp_path / "batch"
    assert replay("--format", export_format, "-o", str(batch), "-n", "1") == 0
    view = build_view(read_recording(SYNTHETIC)[0])
    request = export_request(view, ViewOptions())
    screen = tmp_path / "screen"
    name = "perftop cpu-clock"  # the profile's name inside: batch names the run by its event
    write_export(screen, export_format, view.stacks, request.meta, name=name)
    assert screen.read_bytes() == batch.read_bytes()


def test_folded_pid_gives_the_screens_x_the_same_comm_pid_roots(tmp_path: Path) -> None:
    """`perftop --folded-pid` on the screen: the `x` dialog's folded file is batch's
    `--format folded --folded-pid` file, byte for byte; without the flag, `comm` roots."""
    from perftop.formats.files import write_export
    from perftop.profile.view import build_view
    from perftop.viewmodel.controls import ViewOptions
    from perftop.viewmodel.export import export_request

    batch = tmp_path / "batch"
    assert replay("--format", "folded", "--folded-pid", "-o", str(batch), "-n", "1") == 0
    view = build_view(read_recording(SYNTHETIC)[0])
    for folded_pid, expected in ((True, batch.read_bytes()), (False, None)):
        request = export_request(view, ViewOptions(folded_pid=folded_pid))
        screen = tmp_path / f"screen-{folded_pid}"
        write_export(screen, "folded", view.stacks, request.meta, name="perftop cpu-clock")
        roots = {line.split(";", 1)[0] for line in screen.read_text().splitlines()}
        if expected is not None:
            assert screen.read_bytes() == expected
            assert all(root.rsplit("-", 1)[1].isdigit() for root in roots), roots
        else:
            assert not any(root.rsplit("-", 1)[-1].isdigit() for root in roots), roots


def test_folded_pid_is_accepted_for_the_screen() -> None:
    from perftop.cli.main import parse_config

    config = parse_config(["--folded-pid"])
    assert config.folded_pid and not config.batch
