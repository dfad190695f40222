"""A function's samples laid over its code: the annotate view's lines, as printable strings.

Pure: the histogram (perftop.model.annotate) and the code read from disk
(perftop.annotate.code) in, lines out; the screen and batch mode both draw these.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from perftop.annotate.code import FunctionCode, Instruction
from perftop.model.annotate import CodeKind, OffsetHistogram
from perftop.model.samples import FunctionKey
from perftop.model.stats import View
from perftop.profile.leaf_offsets import function_histogram
from perftop.sanitize import printable

HOT_PERCENT = 0.5  # a line with at least this share of the function is "hot" (next-hot key)
MAX_TEXT = 160


@dataclass(frozen=True, slots=True)
class AnnotatedLine:
    offset: int | None  # bytes into the function (a line number for Python); None: source row
    text: str  # printable: an instruction, or a source line's text
    samples: float
    percent: float  # of the function's samples
    source: str = ""  # printable "file:line" of an instruction (or of a Python line)
    is_source: bool = False  # a source line interleaved above its instructions
    hottest: bool = False  # the hottest instruction, or the hottest source line
    jump: str = ""  # "↑" / "↓" a jump inside the function, "→" out of it
    target: bool = False  # a jump inside the function lands here


@dataclass(frozen=True, slots=True)
class Annotation:
    symbol: str  # printable
    module: str  # printable
    kind: CodeKind
    lines: tuple[AnnotatedLine, ...]
    samples: float  # the function's samples as leaf (all of them: placed or not)
    other_samples: float  # at offsets beyond the histogram's bound, or with no known address
    reason: str = ""  # printable: why there is no code (or less of it)
    note: str = ""  # printable: what to know about the code shown

    @property
    def hot_lines(self) -> tuple[int, ...]:
        """Indexes of the hot lines that are not source rows, hottest first."""
        hot = [
            index
            for index, line in enumerate(self.lines)
            if not line.is_source and line.percent >= HOT_PERCENT
        ]
        hot.sort(key=lambda index: (-self.lines[index].samples, index))
        return tuple(hot)

    def next_hot(self, current: int) -> int | None:
        """The hot line after `current` in hottest-first order (wrapping): perf's Tab."""
        order = self.hot_lines
        if not order:
            return None
        if current in order:
            return order[(order.index(current) + 1) % len(order)]
        return order[0]


def annotated_histogram(view: View, function: FunctionKey) -> OffsetHistogram | None:
    """The function's leaf histogram over the processes the view shows (the zoomed one, or
    the PID filter's). The text filter keeps whole stacks, not addresses: not applied."""
    pids: tuple[int, ...] | None = None
    if view.filter.zoom_pid is not None:
        pids = (view.filter.zoom_pid,)
    elif view.filter.pids:
        pids = view.filter.pids
    return function_histogram(view.interval.leaf_offsets, function, pids)


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


def annotate(
    function: FunctionKey, histogram: OffsetHistogram | None, code: FunctionCode | None
) -> Annotation:
    symbol, module, _ = function
    if histogram is None:
        return Annotation(
            printable(symbol, MAX_TEXT),
            printable(module, MAX_TEXT),
            CodeKind.KERNEL if function[2] else CodeKind.NATIVE,
            (),
            0.0,
            0.0,
            "no samples of this function as the leaf in this view",
        )
    total = histogram.total
    other = histogram.overflow + histogram.unplaced
    kind = histogram.site.kind
    reason = code.reason if code is not None else "reading its code..."
    note = code.note if code is not None else histogram.site.note
    if code is not None and kind is CodeKind.PYTHON and code.source_text:
        lines = _python_lines(histogram, code, total)
    elif code is not None and code.instructions:
        lines = _instruction_lines(histogram, code, total)
    else:
        lines = _offset_lines(histogram, total, kind)
    return Annotation(
        printable(symbol, MAX_TEXT),
        printable(module, MAX_TEXT),
        kind,
        lines,
        total,
        other,
        printable(reason, 300),
        printable(note, 300),
    )


def _offset_lines(
    histogram: OffsetHistogram, total: float, kind: CodeKind
) -> tuple[AnnotatedLine, ...]:
    """No code to show: the sampled offsets alone."""
    hottest = max(histogram.counts.values(), default=0.0)
    return tuple(
        AnnotatedLine(
            offset,
            f"line {offset}" if kind is CodeKind.PYTHON else f"+0x{offset:x}",
            weight,
            _percent(weight, total),
            hottest=weight == hottest,
        )
        for offset, weight in sorted(histogram.counts.items())
    )


def _python_lines(
    histogram: OffsetHistogram, code: FunctionCode, total: float
) -> tuple[AnnotatedLine, ...]:
    hottest = max(histogram.counts.values(), default=0.0)
    shown = {number for (_, number), _ in code.source_text}
    rows = [
        AnnotatedLine(
            number,
            printable(text.expandtabs(4), MAX_TEXT),
            histogram.counts.get(number, 0.0),
            _percent(histogram.counts.get(number, 0.0), total),
            source=printable(f"{_basename(filename)}:{number}", MAX_TEXT),
            hottest=hottest > 0 and histogram.counts.get(number, 0.0) == hottest,
        )
        for (filename, number), text in code.source_text
    ]
    # Samples on lines outside what was read (the file changed since?) still show.
    for number, weight in sorted(histogram.counts.items()):
        if number not in shown:
            rows.append(
                AnnotatedLine(
                    number,
                    f"line {number} (not in the file as read)",
                    weight,
                    _percent(weight, total),
                    hottest=weight == hottest,
                )
            )
    return tuple(rows)


def _instruction_lines(
    histogram: OffsetHistogram, code: FunctionCode, total: float
) -> tuple[AnnotatedLine, ...]:
    instructions = code.instructions
    starts = [instruction.offset for instruction in instructions]
    # A sample's address is an instruction's start; one that is not (a skid, code that
    # changed) counts for the instruction that contains it.
    weights = [0.0] * len(instructions)
    outside = 0.0
    for offset, weight in histogram.counts.items():
        index = bisect.bisect_right(starts, offset) - 1
        if index < 0:
            outside += weight
        else:
            weights[index] += weight
    by_location: dict[tuple[str, int], float] = {}
    for instruction, weight in zip(instructions, weights, strict=True):
        if instruction.source is not None:
            by_location[instruction.source] = by_location.get(instruction.source, 0.0) + weight
    hottest = max(weights, default=0.0)
    hottest_location = max(by_location.values(), default=0.0)
    targets = {i.jump_to for i in instructions if i.jump_to is not None}
    rows: list[AnnotatedLine] = []
    previous: tuple[str, int] | None = None
    for instruction, weight in zip(instructions, weights, strict=True):
        location = instruction.source
        if location is not None and location != previous:
            located = by_location[location]
            text = code.source_line(location)
            rows.append(
                AnnotatedLine(
                    None,
                    printable(text.expandtabs(4).strip() if text is not None else "", MAX_TEXT),
                    located,
                    _percent(located, total),
                    printable(f"{_basename(location[0])}:{location[1]}", MAX_TEXT),
                    is_source=True,
                    hottest=located > 0 and located == hottest_location,
                )
            )
        previous = location
        rows.append(
            AnnotatedLine(
                instruction.offset,
                printable(instruction.text.expandtabs(1), MAX_TEXT),
                weight,
                _percent(weight, total),
                printable(f"{_basename(location[0])}:{location[1]}", MAX_TEXT) if location else "",
                hottest=weight > 0 and weight == hottest,
                jump=_jump_mark(instruction),
                target=instruction.offset in targets,
            )
        )
    if outside:
        rows.insert(0, AnnotatedLine(None, "(before the first instruction)", outside, 0.0))
    return tuple(rows)


def _jump_mark(instruction: Instruction) -> str:
    if instruction.jump_to is not None:
        return "↑" if instruction.jump_to <= instruction.offset else "↓"
    return "→" if instruction.jumps_out else ""


def _basename(path: str) -> str:
    return path.rpartition("/")[2] or path


# Batch output ------------------------------------------------------------------------------


def annotation_json(annotation: Annotation) -> dict[str, Any]:
    """{"symbol", "module", "instructions": [{"offset", "text", "samples", "percent",
    "source"}]}: instructions (or Python lines, offset being the line), no source rows."""
    return {
        "symbol": annotation.symbol,
        "module": annotation.module,
        "kind": str(annotation.kind),
        "samples": round(annotation.samples, 2),
        "other_samples": round(annotation.other_samples, 2),
        "reason": annotation.reason or None,
        "note": annotation.note or None,
        "instructions": [
            {
                "offset": line.offset,
                "text": line.text,
                "samples": round(line.samples, 2),
                "percent": round(line.percent, 2),
                "source": line.source or None,
            }
            for line in annotation.lines
            if not line.is_source
        ],
    }


def bar(percent: float, width: int) -> str:
    cells = percent / 100.0 * width
    full = int(cells)
    return ("█" * full + ("▌" if cells - full >= 0.5 else "")).ljust(width)


def line_label(line: AnnotatedLine, kind: CodeKind) -> str:
    if line.offset is None:
        return ""
    return f"{line.offset:>5}" if kind is CodeKind.PYTHON else f"{line.offset:>5x}"


def annotation_text(annotation: Annotation, bar_width: int = 12) -> str:
    """perf annotate --stdio's shape: share, bar, offset, instruction; source rows between."""
    out = [
        f"Annotate {annotation.symbol}  [{annotation.module}]  "
        f"{annotation.samples:.0f} samples as the leaf"
    ]
    if annotation.note:
        out.append(f"  note: {annotation.note}")
    if annotation.reason:
        out.append(f"  {annotation.reason}")
    if annotation.other_samples:
        other = _percent(annotation.other_samples, annotation.samples)
        out.append(
            f"  {other:6.2f}% ({annotation.other_samples:.0f} samples) at offsets not placed"
        )
    for line in annotation.lines:
        mark = "*" if line.hottest else " "
        share = f"{line.percent:6.2f}%" if line.samples else "       "
        if line.is_source:
            out.append(f"{mark}{share} {'':{bar_width}}        {line.source}  {line.text}")
        else:
            label = line_label(line, annotation.kind)
            jump = (line.jump or " ") + (">" if line.target else " ")
            out.append(f"{mark}{share} {bar(line.percent, bar_width)} {label}:{jump} {line.text}")
    return "\n".join(out) + "\n"
