from __future__ import annotations

import os

from perftop.system.stdio import captured_fds


def test_writes_to_fds_1_and_2_are_captured(capfd) -> None:  # type: ignore[no-untyped-def]
    with captured_fds() as captured:
        os.write(1, b"Unable to find kernel headers\n")
        os.write(2, b"perf_event_open: No such file or directory\n")
    assert capfd.readouterr() == ("", "")
    assert "Unable to find kernel headers" in captured.text
    assert captured.summary() == (
        "Unable to find kernel headers | perf_event_open: No such file or directory"
    )
