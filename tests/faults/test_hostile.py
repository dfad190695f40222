"""Hostile processes, for real: a process whose name, command line and symbols carry terminal
escape sequences, Rich markup, a right-to-left override, invalid UTF-8 and very long strings,
and JIT processes whose perf maps are hostile (a symlink to a secret, another user's file, a
FIFO, a huge file, garbage). One live perftop run records them; its JSON, the text and folded
output of the recording, and the live screen in tmux are each checked."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from perftop.formats.recording import read_recording
from perftop.model.reasons import Unresolved
from perftop.model.samples import Frame, Interval
from perftop.symbols.perfmap import MAX_MAP_BYTES
from tests.faults.conftest import Programs, Spawn, boost
from tests.faults.helpers import (
    ROOT,
    finish,
    perftop_argv,
    perftop_env,
    run_perftop,
    start_perftop,
    wait_until_attached,
)

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

# What hostile.c sets: its comm (15 bytes) and its hot function's symbol, as perftop decodes them.
HOSTILE_COMM = "\x1b]0;PWN\x07[b]\u202e\ufffd"
HOSTILE_SYMBOL = "\x1b[31mevil[red]\u202e\ufffd\x1b]0;PWN4\x07"
HOSTILE_ARGV = [
    b"\x1b]2;PWN2\x07",
    b"[bold red]markup[/]",
    "\u202eRTL".encode(),
    b"\xff\xfeinvalid",
    b"A" * 5000,
]
JIT_NAME = b"jit\x1b]0;PWN3\x07[i]\xe2\x80\xae\xff"  # a perf map line's name, hostile too
LONG_NAME = b"L" * 20000 + b"\x1b[2J"
SECRETS = ("SECRET_CONTENT_LEAKED", "OTHER_USER_SYMBOL", "HUGE_MAP_SYMBOL")
# Bytes that must never reach a terminal from another process: OSC title sequences from each
# hostile string, the right-to-left override, and the hostile colour before "evil".
RAW_HOSTILE = (b"\x1b]0;PWN", b"\x1b]2;PWN2", b"\x1b]0;PWN3", b"\x1b]0;PWN4", b"\xe2\x80\xae")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@dataclass
class Tmux:
    """The live screen, started in tmux beside the batch run (their compiles overlap)."""

    command: list[str]
    raw: Path  # every byte perftop writes to the terminal (tmux pipe-pane)

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.command, *args], capture_output=True, check=False)


@dataclass
class World:
    hostile: int
    jit: dict[str, int]  # perf map case -> pid
    json_result: subprocess.CompletedProcess[str]
    recording: Path
    elapsed: float
    tmux: Tmux | None

    def snapshots(self) -> list[Interval]:
        return read_recording(self.recording)

    def frames(self, pid: int) -> set[Frame]:
        return {f for s in self.snapshots() for st in s.stacks if st.pid == pid for f in st.frames}


def _code_range(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    assert process.stdout is not None
    address, size = process.stdout.readline().split()
    return address, size


@pytest.fixture(scope="module")
def world(
    module_spawn: Spawn, programs: Programs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    planted: list[Path] = []
    hostile = module_spawn([programs["hostile"], *HOSTILE_ARGV])
    secret = tmp_path_factory.mktemp("secret") / "secret.map"
    address, size = _code_range(hostile)
    secret.write_bytes(address + b" " + size + b" SECRET_CONTENT_LEAKED\n")
    secret.chmod(0o600)
    hostile_map = Path(f"/tmp/perf-{hostile.pid}.map")
    hostile_map.unlink(missing_ok=True)
    os.symlink(secret, hostile_map)
    planted.append(hostile_map)

    jit: dict[str, int] = {}
    refused: list[subprocess.Popen[bytes]] = []
    for case in ("hostile-name", "long-name", "other-user", "fifo", "huge", "garbage"):
        process = module_spawn([programs["jitspin"]])
        if case != "long-name":
            refused.append(process)
        address, size = _code_range(process)
        path = Path(f"/tmp/perf-{process.pid}.map")
        path.unlink(missing_ok=True)
        line = address + b" " + size + b" "
        if case == "hostile-name":
            path.write_bytes(line + JIT_NAME + b"\n")
        elif case == "long-name":
            path.write_bytes(line + LONG_NAME + b"\n")
        elif case == "other-user":
            path.write_bytes(line + b"OTHER_USER_SYMBOL\n")
            os.chown(path, 65534, 65534)
        elif case == "fifo":
            os.mkfifo(path)  # opened blocking, this would hang perftop
        elif case == "huge":
            with path.open("wb") as huge:
                huge.write(line + b"HUGE_MAP_SYMBOL\n")
                huge.truncate(MAX_MAP_BYTES + (1 << 20))  # sparse: no disk used
        else:
            garbage = os.urandom(1 << 20) + b"\n" + b"x" * 100_000 + b"\n"
            path.write_bytes(garbage + line + b"garbage_survivor\n")
        planted.append(path)
        jit[case] = process.pid

    tmux = None
    if shutil.which("tmux") is not None:
        # The screen, filtered to the hostile process and the long-named one.
        tmux = Tmux(
            ["tmux", "-L", f"perftop-faults-{os.getpid()}"],
            tmp_path_factory.mktemp("screen") / "raw.log",
        )
        screen_pids = f"{hostile.pid},{jit['long-name']}"
        command = " ".join(perftop_argv("-d", "1", "-p", screen_pids))
        # 200 columns: the call-stack pane beside the tables is 80 wide there, room for a
        # frame's reason ("perf map is a symlink") after its 20-character address.
        subprocess.run(
            [*tmux.command, "new-session", "-d", "-s", "hostile", "-x", "200", "-y", "48",
             f"cd {ROOT} && exec {command}"],
            check=True, env=perftop_env(),
        )  # fmt: skip
        tmux.run("pipe-pane", "-o", "-t", "hostile", f"cat >> {tmux.raw}")

    recording = tmp_path_factory.mktemp("hostile") / "hostile.jsonl"
    pids = ",".join(str(pid) for pid in (hostile.pid, *jit.values()))
    started = time.monotonic()
    args = ["--batch", "--format", "json", "-n", "3", "-d", "0.5", "-p", pids]
    batch = start_perftop(*args, "--record", str(recording))
    wait_until_attached(batch.pid)
    boost(hostile.pid, *jit.values())
    result = finish(batch)
    for process in refused:  # the screen needs only the hostile and long ones
        process.kill()
    elapsed = time.monotonic() - started
    try:
        yield World(hostile.pid, jit, result, recording, elapsed, tmux)
    finally:
        if tmux is not None:
            tmux.run("kill-server")
        for path in planted:
            path.unlink(missing_ok=True)


def assert_no_raw_control(text: str) -> None:
    found = CONTROL.findall(text.replace("\n", ""))
    assert not found, f"raw control characters in output: {found[:10]!r}"


# The batch outputs ----------------------------------------------------------------------------


def test_json_output_carries_exact_strings_escaped(world: World) -> None:
    result = world.json_result
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert_no_raw_control(result.stdout)  # ensure_ascii: every such character is a \u escape
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    processes = {p["pid"]: p for line in lines for p in line["processes"]}
    hostile = processes[world.hostile]
    assert hostile["comm"] == HOSTILE_COMM
    cmdline = hostile["cmdline"]
    for expected in ("\x1b]2;PWN2\x07", "[bold red]markup[/]", "\u202eRTL", "\udcff\udcfeinvalid"):
        assert expected in cmdline
    assert "A" * 5000 in cmdline  # JSON keeps the whole string
    symbols = {f["symbol"] for line in lines for f in line["functions"]}
    assert HOSTILE_SYMBOL in symbols
    assert "jit\x1b]0;PWN3\x07[i]\u202e\ufffd" in symbols
    assert LONG_NAME.decode() in symbols
    assert "garbage_survivor" in symbols  # the one good line in a megabyte of garbage
    for secret in SECRETS:
        assert secret not in result.stdout


def test_text_output_shows_names_literally(world: World) -> None:
    result = run_perftop("--replay", str(world.recording), "--batch", "-d", "0.01", "--top", "100")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert_no_raw_control(text)
    assert r"\x1b]0;PWN\x07[b]\u202e" + "\ufffd" in text  # the comm
    assert r"\x1b]2;PWN2\x07 [bold red]markup[/] \u202eRTL \udcff\udcfeinvalid" in text
    assert r"\x1b[31mevil[red]\u202e" in text  # the ELF symbol
    assert r"jit\x1b]0;PWN3\x07[i]\u202e" in text  # the perf map name
    long_lines = [line for line in text.splitlines() if "LLLLLLLLLL" in line]
    assert long_lines and all(len(line) < 400 and "…" in line for line in long_lines)
    for secret in SECRETS:
        assert secret not in text


def test_folded_output_is_safe_and_parseable(world: World) -> None:
    result = run_perftop("--replay", str(world.recording), "--batch", "-d", "0.01",
                         "--format", "folded")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_raw_control(result.stdout)
    lines = result.stdout.splitlines()
    assert lines and all(re.fullmatch(r".+ \d+", line) for line in lines)
    hostile = [line for line in lines if line.startswith(r"\x1b]0:PWN\x07[b]\u202e")]
    assert hostile, lines[:5]
    frames = [frame for line in hostile for frame in line.rsplit(" ", 1)[0].split(";")]
    assert r"\x1b[31mevil[red]\u202e" + "\ufffd" + r"\x1b]0:PWN4\x07" in frames
    assert any(line.startswith("jitspin;") and r"jit\x1b]0:PWN3\x07" in line for line in lines)


# Perf maps ------------------------------------------------------------------------------------


def test_hostile_perf_maps_are_refused_with_a_reason(world: World) -> None:
    assert world.json_result.returncode == 0
    assert world.elapsed < 60, "a perf map held perftop up (a FIFO opened blocking?)"
    expected = {
        world.hostile: Unresolved.PERF_MAP_SYMLINK,
        world.jit["other-user"]: Unresolved.PERF_MAP_FOREIGN_OWNER,
        world.jit["fifo"]: Unresolved.PERF_MAP_NOT_REGULAR,
        world.jit["huge"]: Unresolved.PERF_MAP_TOO_LARGE,
    }
    for pid, reason in expected.items():
        jit_frames = {f for f in world.frames(pid) if f.module.startswith("[anon")}
        assert jit_frames, (pid, world.frames(pid))
        assert {f.unresolved_reason for f in jit_frames} == {reason}
    recorded = world.recording.read_text()
    for secret in SECRETS:
        assert secret not in recorded


# The screen -----------------------------------------------------------------------------------


@dataclass
class ScreenRun:
    tables: str  # the screen once the hostile names are in the tables
    stacks: str  # the screen once the hostile process's stacks are shown
    raw: bytes  # every byte perftop wrote to the terminal
    title: str  # the terminal window title at the end (an OSC sequence would set it)


@pytest.fixture(scope="module")
def screen_run(world: World) -> ScreenRun:
    tmux = world.tmux
    if tmux is None:
        pytest.skip("tmux missing (make setup installs it)")

    def keys(*names: str) -> None:
        tmux.run("send-keys", "-t", "hostile", *names)
        time.sleep(0.3)

    def wait_for(*wanted: str) -> str:
        screen = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            screen = tmux.run("capture-pane", "-p", "-t", "hostile").stdout.decode(
                "utf-8", "replace"
            )
            if all(text in screen for text in wanted):
                break
            time.sleep(0.5)
        for text in wanted:
            assert text in screen, screen
        return screen

    # The comm, the ELF symbol and the 20000-character JIT name, in the tables.
    tables = wait_for(r"\x1b]0;PWN", r"\x1b[31mevil[red]", "LLLLLLLLLL")
    # Find the stacks through its JIT code (/ anon), then look at the hottest function (Tab):
    # the call-stack pane shows that [anon] frame with why it has no name.
    keys("/")
    wait_for("Show the stacks whose command or a symbol")
    keys("anon", "Enter")
    wait_for('text "anon"')
    keys("Tab")
    stacks = wait_for("▼ [.] [anon]+0x", "perf map is a symlink")
    title = tmux.run("display-message", "-p", "-t", "hostile", "#{pane_title}").stdout
    keys("q")
    return ScreenRun(tables, stacks, tmux.raw.read_bytes(), title.decode("utf-8", "replace"))


def test_screen_shows_hostile_names_as_text(screen_run: ScreenRun) -> None:
    for screen in (screen_run.tables, screen_run.stacks):
        assert_no_raw_control(screen)
        assert "LLLLLLLLLL" * 50 not in screen  # a 20000-character name is cut to fit
    assert r"\x1b]0;PWN\x07[b]" in screen_run.tables  # the comm, markup and all
    assert r"\x1b[31mevil[red]\u202e" in screen_run.tables  # the symbol
    assert "[anon]" in screen_run.stacks  # the JIT frame, with why it has no name
    assert "PWN" not in screen_run.title  # no OSC title sequence reached the terminal
    assert screen_run.raw, "pipe-pane recorded nothing"
    for sequence in RAW_HOSTILE:
        assert sequence not in screen_run.raw, sequence
    assert b"\x1b[31mevil" not in screen_run.raw


def test_pane_title_shows_markup_literally(world: World, screen_run: ScreenRun) -> None:
    """The call-stack pane's title names the selected function, here perftop's own "[anon]"
    (eaten as a markup tag today: "Call stacks: [.] +0x7f...")."""
    title = next(line for line in screen_run.stacks.splitlines() if "Call stacks: " in line)
    assert "Call stacks: [.] [anon]+0x" in title, title
