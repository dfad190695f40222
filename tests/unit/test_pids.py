"""One PID parser for the command line and the screen."""

from __future__ import annotations

import pytest

from perftop.model.pids import MAX_PID, MAX_PIDS, check_exist, parse_pids


@pytest.mark.parametrize("text", ["²", "١٢", "1e3", "+5", str(2**31)])
def test_what_int_would_take_or_choke_on_is_not_a_pid(text: str) -> None:
    with pytest.raises(ValueError, match=r"^'.*' is not a PID \(a positive whole number\)$"):
        parse_pids(text)


def test_the_limit_counts_distinct_pids() -> None:
    assert (
        len(parse_pids(" ".join(["7"] * 100 + [str(p) for p in range(1, MAX_PIDS + 1)])))
        == MAX_PIDS
    )
    with pytest.raises(ValueError, match=f"^at most {MAX_PIDS} PIDs can be filtered at once$"):
        parse_pids(",".join(str(pid) for pid in range(1, MAX_PIDS + 2)))


def test_existence_names_the_first_missing_pid() -> None:
    check_exist((1, 2), lambda pid: True)
    with pytest.raises(ValueError, match=r"^no process with PID 3$"):
        check_exist((1, 3, 4), lambda pid: pid == 1)
    with pytest.raises(ValueError, match=f"^no process with PID {MAX_PID + 1}$"):
        check_exist((MAX_PID + 1,), lambda pid: True)
