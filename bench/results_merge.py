"""What bench/RESULTS.md already says of each benchmark, so a run of some of them (`--only`)
keeps the others' sections instead of dropping them.

Each benchmark's section carries a hidden line, `<!-- bench-run: {...} -->`, with what that run
of it measured (exit status, seconds, others' busy processes, when, at which commit, and its
figures as run_all.py read them); with it, the section and its rows of the summary table are
written again exactly. A section written before these lines existed is read from what it shows:
the script's output, its line under "Runs", the file's date and commit, and the summary rows
that its output's own figure table names (or, for the scripts whose figures run_all.py reads
from their printed tables, those figures read again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from benchlib import Figure

RECORD = re.compile(r"^<!-- bench-run: (?P<json>.*) -->$", re.MULTILINE)
SECTION = re.compile(r"^## (?P<name>\S+)\n(?P<body>.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
OUTPUT = re.compile(r"^```\n(?P<output>.*?)^```", re.MULTILINE | re.DOTALL)
RUN_LINE = re.compile(
    r"^- `(?P<name>[^`]+)`: exit (?P<status>-?\d+), (?P<seconds>\d+) s(?:, run [^;]*)?; "
    r"others' busy processes when it started: (?P<strangers>.*)$",
    re.MULTILINE,
)
FILE_DATE = re.compile(r"^- date: (?P<date>.+?) \(", re.MULTILINE)
FILE_COMMIT = re.compile(r"^- perftop: (?P<commit>\S+)", re.MULTILINE)
FILE_MACHINE = re.compile(
    r"^- machine: (?P<machine>.+)\n- kernel: (?P<kernel>[^;]+);", re.MULTILINE
)


@dataclass(slots=True)
class KeptRun:
    """One benchmark's run as an earlier RESULTS.md recorded it."""

    name: str
    status: int
    seconds: float
    run_at: str
    commit: str
    machine: str = ""  # CPUs, model, kernel: kept runs may come from another machine
    strangers: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    # The ratio cells as first written ("" where none was kept): a ratio derived again from
    # the table's rounded values can differ in its last digit.
    ratios: list[str] = field(default_factory=list)
    output: str = ""


def record_line(run: KeptRun) -> str:
    """The hidden line a section starts with (the output is in the section itself)."""
    data = asdict(run)
    del data["output"]
    return f"<!-- bench-run: {json.dumps(data, ensure_ascii=True)} -->"


def kept_runs(
    text: str, names: Iterable[str], figures_from_output: Callable[[str, str], list[Figure] | None]
) -> dict[str, KeptRun]:
    """The runs of `names` that `text` (an earlier RESULTS.md) holds. `figures_from_output`
    reads a benchmark's figures from its printed output, or None for one that hands them over
    as JSON (their rows are then taken from the summary table)."""
    wanted = set(names)
    file_date = FILE_DATE.search(text)
    file_commit = FILE_COMMIT.search(text)
    file_machine = FILE_MACHINE.search(text)
    run_lines = {match.group("name"): match for match in RUN_LINE.finditer(text)}
    rows = _table_rows(text)
    kept: dict[str, KeptRun] = {}
    for section in SECTION.finditer(text):
        name, body = section.group("name"), section.group("body")
        if name not in wanted:
            continue
        output_match = OUTPUT.search(body)
        output = output_match.group("output") if output_match else ""
        record = RECORD.search(body)
        if record is not None:
            data = json.loads(record.group("json"))
            data["figures"] = [Figure(**figure) for figure in data["figures"]]
            kept[name] = KeptRun(**data, output=output)
            continue
        run_line = run_lines.get(name)
        figures = figures_from_output(name, output)
        if figures is None:
            figures = [row for row, _ in rows if _table_name(row) in output]
        ratios = [ratio for row, ratio in rows for figure in figures if row == figure][
            : len(figures)
        ]
        kept[name] = KeptRun(
            name=name,
            status=int(run_line.group("status")) if run_line else 0,
            seconds=float(run_line.group("seconds")) if run_line else 0.0,
            run_at=file_date.group("date") if file_date else "unknown date",
            commit=file_commit.group("commit") if file_commit else "unknown commit",
            machine=(
                f"{file_machine.group('machine')}, kernel {file_machine.group('kernel')}"
                if file_machine
                else ""
            ),
            strangers=_strangers(run_line.group("strangers")) if run_line else [],
            figures=figures,
            ratios=ratios if len(ratios) == len(figures) else [],
            output=output,
        )
    return kept


def _strangers(text: str) -> list[str]:
    return [] if text == "none" else text.split(", ")


def _table_name(figure: Figure) -> str:
    return f"{figure.name} ({figure.unit})" if figure.unit else figure.name


def _value(cell: str) -> float | None:
    return None if cell == "-" else float(cell.replace(",", ""))


def _table_rows(text: str) -> list[tuple[Figure, str]]:
    """The summary table's rows, read back as figures, each with its ratio cell."""
    figures = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 8 or cells[0] in ("figure", "---") or cells[1].startswith("-:"):
            continue
        if cells[1] != "-" and not re.fullmatch(r"-?[\d,]+\.\d+", cells[1]):
            continue
        name, unit = cells[0], ""
        unit_match = re.fullmatch(r"(?P<name>.*) \((?P<unit>[^()]*)\)", cells[0])
        if unit_match:
            name, unit = unit_match.group("name"), unit_match.group("unit")
        figures.append(
            (
                Figure(
                    name=name,
                    unit=unit,
                    perftop=_value(cells[1]),
                    peer_name="" if cells[2] == "-" else cells[2],
                    peer=_value(cells[3]),
                    target="" if cells[5] == "-" else cells[5],
                    met={"met": True, "MISSED": False}.get(cells[6]),
                    note=cells[7],
                ),
                cells[4],
            )
        )
    return figures
