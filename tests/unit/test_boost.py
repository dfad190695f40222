"""The start-up boost: what it raises, that it gives it back, and when it is taken."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perftop.launch import boost_wanted
from perftop.system import boost


def test_autogroup_nice_is_read_from_the_kernel_line() -> None:
    assert boost.autogroup_nice("/autogroup-123 nice 0\n") == 0
    assert boost.autogroup_nice("/autogroup-7 nice -5") == -5
    assert boost.autogroup_nice("") is None
    assert boost.autogroup_nice("/autogroup-7 nice x") is None


def fake_autogroup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, enabled: str, line: str
) -> Path:
    autogroup = tmp_path / "autogroup"
    autogroup.write_text(line)
    switch = tmp_path / "enabled"
    switch.write_text(enabled)
    monkeypatch.setattr(boost, "AUTOGROUP", autogroup)
    monkeypatch.setattr(boost, "AUTOGROUP_ENABLED", switch)
    monkeypatch.setattr(boost.StartupBoost, "_raise_threads", lambda self: None)
    return autogroup


def test_the_sessions_autogroup_is_raised_then_restored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    autogroup = fake_autogroup(monkeypatch, tmp_path, "1\n", "/autogroup-9 nice 3\n")
    started = boost.StartupBoost.begin()
    assert autogroup.read_text() == str(boost.STARTUP_NICE)
    started.end()
    assert autogroup.read_text() == "3"
    autogroup.write_text("/autogroup-9 nice 3\n")
    started.end()  # a second end changes nothing
    assert autogroup.read_text() == "/autogroup-9 nice 3\n"


@pytest.mark.parametrize(
    ("enabled", "line"),
    [("0\n", "/autogroup-9 nice 0\n"), ("1\n", "/autogroup-9 nice -15\n")],
)
def test_autogroup_left_alone_when_off_or_already_higher(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, enabled: str, line: str
) -> None:
    autogroup = fake_autogroup(monkeypatch, tmp_path, enabled, line)
    started = boost.StartupBoost.begin()
    assert not started.active
    assert autogroup.read_text() == line


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a nice needs CAP_SYS_NICE")
def test_threads_started_during_the_boost_get_their_nice_back() -> None:
    # In a fresh process: a nice is per thread, and this one's must not change.
    script = textwrap.dedent(
        """
        import os, threading
        from pathlib import Path
        from perftop.system import boost
        boost.AUTOGROUP_ENABLED = Path("/nonexistent")  # this test's session is left alone
        started = boost.StartupBoost.begin()
        seen = []
        def worker(release):
            seen.append(os.getpriority(os.PRIO_PROCESS, 0))
            release.wait()
            seen.append(os.getpriority(os.PRIO_PROCESS, 0))
        release = threading.Event()
        thread = threading.Thread(target=worker, args=(release,))
        thread.start()
        while not seen:
            pass
        started.end()
        release.set()
        thread.join()
        print(seen, os.getpriority(os.PRIO_PROCESS, 0))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [f"[{boost.STARTUP_NICE},", "0]", "0"], done.stdout


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        ([], True),
        (["-p", "42", "-F", "999"], True),
        (["--batch", "-n", "1"], True),  # as fast to its line as the screen (issue 19)
        (["--replay", "x.jsonl"], False),
        (["--replay=x.jsonl"], False),
        (["doctor"], False),
        (["--help"], False),
    ],
)
def test_the_boost_is_taken_for_live_sampling_only(argv: list[str], wanted: bool) -> None:
    assert boost_wanted(argv) is wanted


def test_batch_mode_gives_the_boost_back_after_its_first_interval() -> None:
    """`--batch -n 1` is boosted to its line like the screen to its first profile, and no
    longer: the boost ends once the first interval is written, before any other is sampled."""
    import io

    from perftop.cli.batch import run_batch
    from perftop.config import Config, SamplerConfig
    from perftop.sampling.replay import ReplaySource

    source = ReplaySource(Path(__file__).parent.parent / "data" / "synthetic.jsonl", interval_s=0)
    stream = io.StringIO()
    written_at_end: list[str] = []
    config = Config(sampler=SamplerConfig(), batch=True, iterations=3)
    try:
        assert (
            run_batch(
                config, source, stream, None, lambda: written_at_end.append(stream.getvalue())
            )
            == 0
        )
    finally:
        source.close()
    assert len(written_at_end) == 1  # once
    first = written_at_end[0]
    assert first and first.count("samples (") == 1  # after the first interval's report only
    assert stream.getvalue().count("samples (") == 3
