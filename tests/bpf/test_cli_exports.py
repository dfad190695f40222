"""The real CLI, the real BPF program and a busy child: the exported profiles hold its frames
and are read by independent readers (pprof's schema, speedscope's JSON schema)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest

from tests.bpf.conftest import CHAIN_COMM
from tests.unit.test_cli_exports import SCHEMA, compile_pprof_schema

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

ROOT = Path(__file__).parents[2]
CHAIN_LEAF_FIRST = ["leaf_spin", "middle", "outer", "main"]


@pytest.fixture(scope="module")
def profile_pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return compile_pprof_schema(tmp_path_factory.mktemp("pb"))


def perftop(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "perftop", "--batch", "-n", "2", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the profile goes to the file, nothing to the terminal


def contains_run(haystack: list[str], needle: list[str]) -> bool:
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack)))


def test_pprof_from_the_cli_holds_the_busy_child(
    busy_chain: subprocess.Popen[bytes], tmp_path: Path, profile_pb2: ModuleType
) -> None:
    out = tmp_path / "out.pb.gz"
    perftop("--format", "pprof", "-o", str(out))
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(out.read_bytes()))
    strings = list(profile.string_table)
    functions = {function.id: function for function in profile.function}
    locations = {location.id: location for location in profile.location}
    mappings = {mapping.id: strings[mapping.filename] for mapping in profile.mapping}
    mine = [
        sample
        for sample in profile.sample
        if any(strings[lb.key] == "pid" and lb.num == busy_chain.pid for lb in sample.label)
    ]
    # Two busy seconds at 99 Hz are ~200 samples on an idle machine; a loaded one (CI running
    # other suites) gives the child less of a CPU, so only "clearly sampled" is asserted.
    assert sum(sample.value[0] for sample in mine) >= 10
    chains = []
    for sample in mine:
        names = []
        for location_id in sample.location_id:
            location = locations[location_id]
            assert location.mapping_id in mappings
            names.append(strings[functions[location.line[0].function_id].name])
        chains.append(names)
    assert any(contains_run(chain, CHAIN_LEAF_FIRST) for chain in chains), chains[:5]
    leaf = next(f for f in functions.values() if strings[f.name] == "leaf_spin")
    assert strings[leaf.filename] == ""  # built without -g: no source file, not the binary
    assert profile.duration_nanos > 1_500_000_000


def test_speedscope_from_the_cli_validates_and_holds_the_busy_child(
    busy_chain: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out.speedscope.json"
    perftop("--format", "speedscope", "-o", str(out), "-p", str(busy_chain.pid))
    document = json.loads(out.read_text())
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    frames = [frame["name"] for frame in document["shared"]["frames"]]
    whole, profile = document["profiles"]  # -p: the whole run, then this process alone
    assert whole["samples"] == profile["samples"] and whole["unit"] == "nanoseconds"
    assert profile["name"] == f"{CHAIN_COMM} (pid {busy_chain.pid})"
    chains = [[frames[index] for index in sample] for sample in profile["samples"]]
    assert any(contains_run(chain, CHAIN_LEAF_FIRST[::-1]) for chain in chains), chains[:5]


@pytest.mark.skipif(shutil.which("flamegraph.pl") is None, reason="flamegraph.pl not installed")
def test_folded_from_the_cli_renders_with_flamegraph_pl(
    busy_chain: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out.folded"
    perftop("--format", "folded", "-o", str(out), "-p", str(busy_chain.pid))
    assert f"{CHAIN_COMM};" in out.read_text()
    svg = subprocess.run(
        ["flamegraph.pl", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert "leaf_spin" in svg
