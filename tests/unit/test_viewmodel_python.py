"""Python frames in the view model: their own mark, and a file path that keeps its file name."""

from __future__ import annotations

from dataclasses import replace

from perftop.model.samples import FrameKind, Interval, StackSample
from perftop.profile.view import build_view
from perftop.viewmodel import (
    FUNCTION_COLUMNS,
    ViewOptions,
    filter_pieces,
    function_kind,
    function_rows,
    module_text,
    stack_tree,
)
from tests.unit.factories import callees, kernel, py, stack, user

DEEP_FILE = "/home/someone/projects/very-long-project-name/src/package/work.py"


def interval_of(*stacks: StackSample, **fields: object) -> Interval:
    bare = Interval(
        timestamp=0.0,
        interval_s=1.0,
        event="cpu-clock",
        frequency_hz=99,
        lost={},
        cpus=(),
        stacks=tuple(stacks),
        processes={},
    )
    return replace(bare, **fields)  # type: ignore[arg-type]


# What a walked CPython stack looks like: callers ; Python frames ; the native leaf.
PYTHON_STACK = stack(
    user("_start", "python3.11"),
    user("Py_RunMain", "python3.11"),
    py("outer", DEEP_FILE, 10),
    py("middle", DEEP_FILE, 20),
    py("inner_spin", DEEP_FILE, 30),
    kernel("asm_sysvec_apic_timer_interrupt"),
    comm="python3.11",
    samples=10,
)


def cells_by_symbol(interval: Interval) -> dict[str, dict[str, str]]:
    ids = [column.id for column in FUNCTION_COLUMNS]
    rows = function_rows(build_view(interval))
    return {row.cells[ids.index("symbol")]: dict(zip(ids, row.cells, strict=True)) for row in rows}


# The module column -------------------------------------------------------------------------


def test_a_short_path_is_shown_whole() -> None:
    assert module_text("/srv/work.py", True, 20) == "/srv/work.py"


def test_a_long_path_keeps_its_end_from_a_whole_directory() -> None:
    shown = module_text(DEEP_FILE, True, 20)
    assert shown == "…src/package/work.py"
    assert len(shown) <= 20


def test_a_file_name_longer_than_the_room_keeps_its_last_characters() -> None:
    shown = module_text("/srv/" + "x" * 30 + "_handlers.py", True, 20)
    assert shown == "…" + ("x" * 30 + "_handlers.py")[-19:]


def test_a_native_module_is_cut_at_its_end_as_before() -> None:
    assert module_text("libverylongname-with-a-version.so.1.2.3", False, 20) == (
        "libverylongname-wit…"
    )


def test_a_path_with_control_characters_is_escaped_before_it_is_cut() -> None:
    shown = module_text("/srv/" + "d" * 30 + "/\x1b[31mevil.py", True, 20)
    assert "\x1b" not in shown and shown.endswith("\\x1b[31mevil.py")
    assert len(shown) <= 20


# The functions table -----------------------------------------------------------------------


def test_every_kind_has_its_mark_in_the_functions_table() -> None:
    cells = cells_by_symbol(interval_of(PYTHON_STACK))
    assert cells["inner_spin (work.py:30)"]["mark"] == "[py]"
    assert cells["asm_sysvec_apic_timer_interrupt"]["mark"] == "[k]"
    assert cells["Py_RunMain"]["mark"] == "[.]"
    assert cells["inner_spin (work.py:30)"]["module"] == "…src/package/work.py"
    assert cells["Py_RunMain"]["module"] == "python3.11"


def test_sorting_by_mark_puts_kernel_then_python_then_native() -> None:
    view = build_view(interval_of(PYTHON_STACK))
    marks = [row.cells[4] for row in function_rows(view, sort="mark")]
    assert [m for i, m in enumerate(marks) if m not in marks[:i]] == ["[k]", "[py]", "[.]"]


def test_a_function_key_tells_its_kind_through_the_view() -> None:
    view = build_view(interval_of(PYTHON_STACK))
    python = next(f for f in view.functions if f.python)
    assert function_kind(view, (python.symbol, python.module, False)) is FrameKind.PYTHON
    assert function_kind(view, ("Py_RunMain", "python3.11", False)) is FrameKind.NATIVE
    # A function gone from the view (the pane shows it until the next selection) still has a mark.
    assert function_kind(view, ("gone", "[kernel]", True)) is FrameKind.KERNEL
    assert function_kind(view, ("gone", "app", False)) is FrameKind.NATIVE


def test_hostile_python_names_are_printable_in_the_table() -> None:
    hostile = stack(py("\x1b[31mevil"), py("[bold]x[/bold]"), samples=3)
    symbols = set(cells_by_symbol(interval_of(hostile)))
    assert "\\x1b[31mevil (work.py:1)" in symbols
    assert "[bold]x[/bold] (work.py:1)" in symbols  # literal: the UI draws cells as text
    assert not any("\x1b" in symbol for symbol in symbols)


# The call-stack pane -----------------------------------------------------------------------


def test_the_stack_tree_marks_python_frames_and_keeps_their_file_name() -> None:
    tree = stack_tree([PYTHON_STACK], "t")
    node, chain = tree, []
    while callees(node):
        (node,) = callees(node)
        chain.append((node.mark, node.kind, node.symbol, node.module))
    # The symbol names the file; the path would push the self share out of a narrow pane.
    assert chain[2] == ("[py]", FrameKind.PYTHON, "outer (work.py:10)", "")
    assert chain[1] == ("[.]", FrameKind.NATIVE, "Py_RunMain", "python3.11")
    assert [mark for mark, *_ in chain] == ["[.]", "[.]", "[py]", "[py]", "[py]", "[k]"]
    assert tree.mark == "" and tree.kind is None


# The header --------------------------------------------------------------------------------


def header(options: ViewOptions, snapshot: Interval | None) -> str:
    return "  ".join(piece.text for piece in filter_pieces(options, snapshot))


def test_the_header_says_when_python_frames_are_off() -> None:
    on = interval_of(PYTHON_STACK)
    assert "no Python frames" not in header(ViewOptions(), on)
    assert "no Python frames" in header(ViewOptions(), replace(on, python_frames=False))


def test_the_header_follows_the_interval_not_the_key_pressed() -> None:
    """Like the stack mode: what the header says is what the interval on screen holds."""
    on = interval_of(PYTHON_STACK)
    assert "no Python frames" not in header(ViewOptions(python_frames=False), on)
    assert "no Python frames" in header(ViewOptions(python_frames=False), None)


def test_a_relative_path_keeps_every_whole_component_that_fits() -> None:
    """The tail "pure_python/work.py" begins at a component already: it fits after the
    ellipsis, not after an ellipsis and a slash, and is kept whole (it read "…/work.py")."""
    assert module_text("workloads/pure_python/work.py", True, 20) == "…pure_python/work.py"
    assert module_text("/usr/lib/python3.11/json/decoder.py", True, 20) == "…/json/decoder.py"
