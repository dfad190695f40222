"""The screen's room shared out: column widths by priority, the processes pane's height."""

from __future__ import annotations

from perftop.viewmodel import FUNCTION_COLUMNS, PROCESS_COLUMNS, ViewOptions, filter_pieces
from perftop.viewmodel.header import says_only_defaults, short_headers
from perftop.viewmodel.layout import Shrink, fit_widths, process_pane_height


def test_columns_that_fit_keep_their_widths() -> None:
    assert fit_widths(80, [5, 10], [[Shrink(1, 0)], [Shrink(2, 3)]]) == (5, 10)
    assert fit_widths(80, [], []) == ()


def test_the_lowest_rank_gives_up_room_first_and_only_as_much_as_needed() -> None:
    # 2 cells of padding a column: 12 + 22 = 34 cells wanted in 30.
    assert fit_widths(30, [10, 20], [[Shrink(2, 4)], [Shrink(1, 10)]]) == (10, 16)


def test_a_drop_is_whole_and_its_spare_room_goes_back_to_the_column_cut_before() -> None:
    # 6 + 42 cells in 24: COMMAND is cut to 20 (28 cells, too many), then THR is dropped,
    # which frees 6 where 4 were needed: the 2 left over come back to COMMAND.
    wanted = [4, 40]
    shrinks = [[Shrink(2, 0)], [Shrink(1, 20)]]
    assert fit_widths(24, wanted, shrinks) == (0, 22)


def test_steps_run_out_and_the_last_widths_stand() -> None:
    assert fit_widths(10, [30], [[Shrink(1, 20)]]) == (20,)


def test_a_step_already_below_its_floor_is_passed_over() -> None:
    assert fit_widths(20, [5, 30], [[Shrink(1, 8)], [Shrink(2, 14)]]) == (5, 14)


def widths_of(columns: object, available: int, wanted: dict[str, int]) -> dict[str, int]:
    cols = list(columns)  # type: ignore[call-overload]
    natural = [wanted.get(c.id, c.width or len(c.title) + 1) for c in cols]
    fitted = fit_widths(available, natural, [c.shrinks for c in cols])
    return {c.id: width for c, width in zip(cols, fitted, strict=True)}


def test_processes_at_80_columns_keep_command_at_20_or_more() -> None:
    """At 80 columns COMMAND was one cell wide beside THR, RSS and SAMPLES."""
    widths = widths_of(PROCESS_COLUMNS, 79, {"comm": 15, "command": 120})
    assert widths["command"] >= 20
    assert widths["threads"] == 0 and widths["rss"] == 0
    assert widths["pid"] and widths["share"] and widths["cpu"] and widths["comm"] == 15


def test_a_long_kernel_thread_name_does_not_take_the_command_line_s_room() -> None:
    widths = widths_of(PROCESS_COLUMNS, 79, {"comm": 33, "command": 120})
    assert widths["comm"] == 18 and widths["command"] >= 20


def test_processes_at_120_columns_lose_nothing_but_command_length() -> None:
    widths = widths_of(PROCESS_COLUMNS, 119, {"comm": 15, "command": 120})
    assert all(widths[c] for c in ("user", "samples", "threads", "rss"))
    assert widths["command"] >= 30


def test_functions_cut_module_before_symbol() -> None:
    # 80 columns, a long C++ symbol: MODULE gives up room, SAMPLES goes, SYMBOL keeps 40.
    widths = widths_of(FUNCTION_COLUMNS, 79, {"module": 20, "mark": 3, "symbol": 120})
    assert widths["symbol"] >= 40
    assert widths["module"] < 20
    wide = widths_of(FUNCTION_COLUMNS, 119, {"module": 20, "mark": 3, "symbol": 120})
    assert wide["module"] == 20 and wide["symbol"] >= 60


def test_the_processes_pane_is_as_tall_as_its_rows() -> None:
    assert process_pane_height(2, 40, 45) == 4  # title, column titles, 2 rows
    assert process_pane_height(0, 40, 45) == 3  # one empty line, not a collapsed pane


def test_the_processes_pane_holds_4_rows_below_32_lines() -> None:
    assert process_pane_height(8, 21, 24) == 6
    assert process_pane_height(3, 21, 24) == 5


def test_from_32_lines_the_processes_pane_takes_30_percent_at_most() -> None:
    assert process_pane_height(8, 37, 40) == 10  # 8 rows fit in 11 lines
    assert process_pane_height(50, 37, 40) == 11
    assert process_pane_height(50, 47, 50) == 14


def test_the_header_line_of_defaults_only_is_left_out() -> None:
    defaults = filter_pieces(ViewOptions(), None)
    assert says_only_defaults(defaults)
    assert not says_only_defaults(filter_pieces(ViewOptions(text_filter="x"), None))
    assert not says_only_defaults(filter_pieces(ViewOptions(paused=True), None))
    assert not says_only_defaults(filter_pieces(ViewOptions(), None, live=False))  # REPLAY


def test_the_kernel_headers_are_a_short_token() -> None:
    merged = (
        "linux-headers-6.1.0-56-amd64 + linux-headers-6.1.0-56-common merged in "
        "/var/cache/perftop/headers/linux-headers-6.1.0-56-amd64 "
        "(generic; running kernel is 6.18.44-fc-v595)"
    )
    assert short_headers(merged) == "6.1.0-56 generic"
    exact = merged.replace("(generic; running kernel is 6.18.44-fc-v595)", "(match the …)")
    assert short_headers(exact) == "6.1.0-56"
    running = "/usr/src/linux-headers-6.8.0-45-generic (headers of the running kernel)"
    assert short_headers(running) == "6.8.0-45-generic"
