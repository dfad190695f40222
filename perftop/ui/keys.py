"""Every key perftop answers to, in one table: the bindings, the help screen and the command
palette are all made from it, so they cannot disagree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from textual.app import SystemCommand
from textual.binding import Binding, BindingType


@dataclass(frozen=True, slots=True)
class Key:
    keys: str  # Textual key names, comma separated
    action: str
    label: str  # short, for the footer
    help: str  # one line, for the help screen and the command palette
    display: str  # how the help screen writes the keys
    footer: bool = True

    @property
    def short(self) -> str:
        """The first key only: the footer has no room for alternatives at 80 columns."""
        return self.display.split()[0]


APP_KEYS: tuple[Key, ...] = (
    Key("q", "quit", "Quit", "Quit perftop", "q"),
    Key("question_mark", "help", "Help", "Show every key and what it does", "?"),
    Key(
        "s,greater_than_sign",
        "sort_next",
        "Sort",
        "Sort the focused table by the next column",
        "s >",
    ),
    Key(
        "less_than_sign", "sort_previous", "Sort", "Sort by the previous column", "<", footer=False
    ),
    Key("r,I", "reverse_sort", "Reverse", "Reverse the sort order of the focused table", "r I"),
    Key(
        "p",
        "pid_filter",
        "PID",
        "Sample only some PIDs (comma separated; applied in the kernel)",
        "p",
    ),
    Key(
        "c",
        "cgroup_filter",
        "Cgroup",
        "Sample only some cgroups and their children (paths; applied in the kernel)",
        "c",
        footer=False,
    ),
    Key(
        "g",
        "group_by_cgroup",
        "Cgroups",
        "Processes pane: cgroups as rows (Enter zooms into one) / processes",
        "g",
        footer=False,
    ),
    Key(
        "slash",
        "text_filter",
        "Find",
        "Show only the stacks whose command or a symbol matches",
        "/",
    ),
    Key(
        "escape",
        "clear_filters",
        "Back",
        "Step back one level: the zoom, then the text filter, then the PID and cgroup filters",
        "Esc",
    ),
    Key("f", "flame", "Flame", "Flame graph of the current view (f again: the tables)", "f"),
    Key(
        "space",
        "toggle_pause",
        "Pause",
        "Freeze the display (sampling goes on; a replay pauses)",
        "space",
    ),
    # Last in the footer: at 80 columns the tables' footer has no room left for it.
    Key(
        "x",
        "export",
        "Export",
        "Save the view to a file: folded stacks, speedscope or pprof",
        "x",
    ),
    Key(
        "a,A",
        "toggle_accumulate",
        "Accum",
        "Toggle last interval / decaying accumulation (A in the functions pane)",
        "a A",
        footer=False,
    ),
    Key(
        "d",
        "by_module",
        "Modules",
        "Functions by module, as perf top --sort dso (d again: by function)",
        "d",
        footer=False,
    ),
    Key(
        "full_stop",
        "replay_step(1)",
        "Step",
        "In a replay: pause and show the next interval",
        ".",
        footer=False,
    ),
    Key(
        "comma",
        "replay_step(-1)",
        "Back",
        "In a replay: pause and show the previous interval",
        ",",
        footer=False,
    ),
    Key(
        "right_square_bracket",
        "replay_seek(10)",
        "+10",
        "In a replay: 10 intervals forward",
        "]",
        footer=False,
    ),
    Key(
        "left_square_bracket",
        "replay_seek(-10)",
        "-10",
        "In a replay: 10 intervals back",
        "[",
        footer=False,
    ),
    Key(
        "i",
        "toggle_callers",
        "Callers",
        "Call-stack pane bottom-up: the callers of the selection (i again: top-down)",
        "i",
        footer=False,  # in the footer while the call-stack pane has the focus
    ),
    Key("z", "zero", "Zero", "Zero the accumulated counts", "z", footer=False),
    Key("e", "pick_event", "Event", "Choose the event to sample on", "e", footer=False),
    Key("k", "cycle_stack_mode", "Stacks", "Cycle kernel / user / both stacks", "k", footer=False),
    Key(
        "y",
        "toggle_python_frames",
        "Python",
        "Toggle Python frames / the interpreter's own C frames",
        "y",
        footer=False,
    ),
    Key("plus", "faster", "+Hz", "Sample more often (49, 99, 199, 499, 999 Hz)", "+", footer=False),
    Key("minus", "slower", "-Hz", "Sample less often", "-", footer=False),
    Key("ctrl+c", "quit", "Quit", "Quit perftop", "ctrl+c", footer=False),
)

# Keys that belong to one pane; listed in the help screen, bound by the widgets themselves.
PANE_KEYS: tuple[tuple[str, str], ...] = (
    ("Enter", "on a process: zoom into it (functions and stacks of that process only)"),
    ("Enter", "on a cgroup: zoom into it (its processes, functions and stacks only)"),
    ("Enter", "on a function: show the stacks through it"),
    ("Tab", "move between the processes, functions and call-stack panes"),
    ("↑ ↓ PgUp PgDn", "move the selection; the call-stack pane follows it"),
    ("Enter", "in the call-stack pane: fold or unfold a branch; on a leaf: annotate it"),
    ("Enter →", "on a ⋯ line: show the frames of a chain of single calls (Enter ←: hide them)"),
    ("a", "on a function: annotate it (its instructions or lines, each with its share)"),
    ("Tab n", "in the annotate view: the next hot instruction; Esc: back"),
    ("click", "on a column title: sort by it (again: reverse)"),
    ("← → ↑ ↓", "in the flame graph: the frame beside, its caller, its hottest callee"),
    ("Enter", "in the flame graph: zoom into the selected frame"),
    ("Esc", "in the flame graph: zoom out one level; at the top, back to the tables"),
    ("click", "in the flame graph: select a frame (double click: zoom into it)"),
    ("ctrl+p", "command palette: every action by name"),
)


def app_bindings() -> list[BindingType]:
    return [
        Binding(key.keys, key.action, key.label, show=key.footer, key_display=key.short)
        for key in APP_KEYS
    ]


def palette_commands(run_action: Callable[[str], Awaitable[object]]) -> Iterator[SystemCommand]:
    """Every key's action in the command palette (ctrl+p), but Quit: Textual's palette has it."""
    seen = {"quit"}
    for key in APP_KEYS:
        if key.action not in seen:
            seen.add(key.action)
            yield SystemCommand(
                key.label, f"{key.help} ({key.display})", _runner(run_action, key.action)
            )


def _runner(
    run_action: Callable[[str], Awaitable[object]], action: str
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await run_action(action)

    return run
