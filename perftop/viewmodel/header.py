"""The header lines: what is sampled, how fast, what is filtered, and what watching costs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from perftop.model.modes import StackMode
from perftop.model.samples import INFORMATIONAL_LOST, CpuStat, Interval
from perftop.model.units import human_bytes
from perftop.sanitize import printable
from perftop.viewmodel.controls import ViewOptions

SPARK = "▁▂▃▄▅▆▇█"


class PieceKind(Enum):
    """What a run of header text is; the UI gives each kind its style."""

    LABEL = "label"  # fixed words, dim
    VALUE = "value"  # a measured number
    ACTIVE = "active"  # a filter or mode in force
    WARN = "warn"  # something the user should act on


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of header text, styled by its kind."""

    text: str
    kind: PieceKind = PieceKind.VALUE


def cpu_sparkline(cpus: Sequence[CpuStat], width: int = 32) -> str:
    """One block per CPU, its height the busy fraction; CPUs are averaged in groups when there
    are more than `width`, so a 128-CPU machine still fits one line."""
    if not cpus or width <= 0:
        return ""
    ordered = sorted(cpus, key=lambda cpu: cpu.cpu)
    group = -(-len(ordered) // width)  # ceiling division
    blocks = []
    for start in range(0, len(ordered), group):
        chunk = ordered[start : start + group]
        busy = sum(cpu.busy_fraction for cpu in chunk) / len(chunk)
        blocks.append(SPARK[min(int(busy * len(SPARK)), len(SPARK) - 1)])
    return "".join(blocks)


def _rate(ns_per_s: float) -> str:
    if ns_per_s >= 1e6:
        return f"{ns_per_s / 1e6:.1f} ms/s"
    if ns_per_s >= 1e3:
        return f"{ns_per_s / 1e3:.0f} µs/s"
    return f"{ns_per_s:.0f} ns/s"


def _fill(used: int, size: int) -> str:
    return f"{100.0 * used / size:.0f}%" if size else "?"


def status_pieces(snapshot: Interval | None, cpu_width: int = 32) -> list[Piece]:
    """Event, frequency, interval, sample rate, lost samples and per-CPU load."""
    if snapshot is None:
        return [Piece("waiting for the first interval…", PieceKind.LABEL)]
    idle = snapshot.samples + snapshot.idle_samples
    pieces = [
        Piece(f"{printable(snapshot.event, 24)} @ {snapshot.frequency_hz} Hz", PieceKind.ACTIVE),
        Piece(f"{snapshot.interval_s:.2f}s", PieceKind.VALUE),
        Piece(f"{snapshot.samples_per_second:,.0f} samples/s", PieceKind.VALUE),
    ]
    if idle:
        pieces.append(Piece(f"idle {100.0 * snapshot.idle_samples / idle:.0f}%", PieceKind.LABEL))
    pieces.append(
        Piece(
            f"lost {snapshot.lost_total}",
            PieceKind.WARN if snapshot.lost_total else PieceKind.LABEL,
        )
    )
    sparkline = cpu_sparkline(snapshot.cpus, cpu_width)
    if sparkline:
        pieces.append(Piece(f"cpu {sparkline}", PieceKind.VALUE))
    return pieces


def filter_pieces(
    options: ViewOptions,
    snapshot: Interval | None,
    zoom_comm: str = "",
    *,
    live: bool = True,
    ended: bool = False,
    zoom_cgroup_name: str = "",
) -> list[Piece]:
    """Where the data comes from, the filters and modes in force; a hint when there are none."""
    pieces: list[Piece] = []
    if options.recording:
        pieces.append(Piece("● REC", PieceKind.WARN))
    if not live:
        at = f" {options.replay_at}" if options.replay_at is not None else ""
        pieces.append(
            Piece(
                "REPLAY ENDED" if ended else f"REPLAY{at}",
                PieceKind.WARN if ended else PieceKind.ACTIVE,
            )
        )
    elif ended:
        pieces.append(Piece("SAMPLING STOPPED", PieceKind.WARN))
    if options.paused:
        pieces.append(Piece("PAUSED", PieceKind.WARN))
    if options.pids:
        pieces.append(Piece("pid " + ",".join(str(pid) for pid in options.pids), PieceKind.ACTIVE))
    if options.cgroups:
        paths = ",".join(printable(path, 40) for path in options.cgroups)
        pieces.append(Piece(f"cgroup {paths}", PieceKind.ACTIVE))
    if options.text_filter:
        pieces.append(Piece(f'text "{printable(options.text_filter, 30)}"', PieceKind.ACTIVE))
    if options.zoom_pid is not None:
        name = f" {printable(zoom_comm, 16)}" if zoom_comm else ""
        pieces.append(Piece(f"zoom {options.zoom_pid}{name}", PieceKind.ACTIVE))
    if options.zoom_cgroup is not None:
        shown = zoom_cgroup_name or printable(options.zoom_cgroup, 40)
        pieces.append(Piece(f"zoom cgroup {printable(shown, 40)}", PieceKind.ACTIVE))
    mode = snapshot.stack_mode if snapshot is not None else options.stack_mode
    if mode != StackMode.BOTH:
        pieces.append(Piece(f"{mode} stacks only", PieceKind.ACTIVE))
    python = snapshot.python_frames if snapshot is not None else options.python_frames
    if not python:
        pieces.append(Piece("no Python frames", PieceKind.ACTIVE))
    unwind = snapshot.unwind if snapshot is not None else ""
    if unwind == "fp":
        pieces.append(Piece("frame-pointer stacks", PieceKind.ACTIVE))
    elif unwind.startswith("fp"):
        pieces.append(Piece("frame-pointer stacks: table walker refused", PieceKind.WARN))
    if options.accumulated:
        pieces.append(Piece("accumulated (decaying)", PieceKind.ACTIVE))
    else:
        pieces.append(Piece("last interval", PieceKind.LABEL))
    if not (options.paused or options.filtered):
        pieces.append(Piece("· p pid  / text  e event  ? help", PieceKind.LABEL))
    return pieces


def says_only_defaults(pieces: Sequence[Piece]) -> bool:
    """True when no piece is a filter, a mode in force or a warning: the line would say only
    what is always so (the last interval, the keys), and the screen has better use for it."""
    return all(piece.kind is PieceKind.LABEL for piece in pieces)


def fitted_cost_pieces(snapshot: Interval | None, width: int) -> list[Piece]:
    """The cost bar with as much detail as `width` columns hold: the lost causes are given up
    before the maps' fill, and the compact form (always, below 120 columns) is the last resort.
    Only the headers, last, may be cut at the edge."""
    pieces: list[Piece] = []
    levels = ((False, 3), (False, 1), (False, 0), (True, 0)) if width >= 120 else ((True, 0),)
    for compact, causes in levels:
        pieces = cost_pieces(snapshot, compact=compact, causes=causes)
        shown = [piece for piece in pieces if not piece.text.startswith("headers ")]
        if pieces_width(shown) <= width:
            break
    return pieces


def pieces_width(pieces: list[Piece]) -> int:
    """Columns of pieces joined by two spaces, as the bars draw them (the cost bar's texts are
    perftop's own, one column a character)."""
    return sum(len(piece.text) for piece in pieces) + 2 * max(0, len(pieces) - 1)


def short_headers(headers: str) -> str:
    """The kernel headers' description (perftop.system.headers) as a token for the cost bar:
    the version is the news, and whether they are another kernel's (`generic`). The whole
    description is in the help screen's "This session" and in `perftop doctor`.

    `/usr/src/linux-headers-6.8.0-45-generic (headers of the running kernel)` -> `6.8.0-45-generic`;
    `linux-headers-6.1.0-56-amd64 + linux-headers-6.1.0-56-common merged in … (generic; …)`
    -> `6.1.0-56 generic`."""
    first = headers.split(" ", 1)[0]
    name = first.rstrip("/").rsplit("/", 1)[-1] if first.startswith("/") else first
    name = name.removeprefix("linux-headers-")
    if " + " in headers:  # Debian's split trees, merged: the arch half's name ends in its arch
        name = name.rsplit("-", 1)[0]
    if "(generic;" in headers:
        name += " generic"
    return name


def cost_pieces(snapshot: Interval | None, compact: bool = False, causes: int = 3) -> list[Piece]:
    """perftop's own footprint, always on screen: watching is not free and users should see it.
    `compact` drops the details for 80 columns; `causes` is how many lost causes are named."""
    if snapshot is None:
        return [Piece("perftop", PieceKind.LABEL)]
    cost = snapshot.cost
    pieces = [
        Piece("perftop", PieceKind.LABEL),
        Piece(f"{cost.cpu_percent:.1f}% cpu", PieceKind.VALUE),
    ]
    if cost.bpf_run_ns_per_s is None:
        pieces.append(
            Piece(
                "bpf ?" if compact else "bpf time off (kernel.bpf_stats_enabled=0)", PieceKind.LABEL
            )
        )
    else:
        per_sample = ""
        if cost.bpf_ns_per_sample is not None and not compact:
            per_sample = f" ({cost.bpf_ns_per_sample:.0f} ns/sample)"
        pieces.append(Piece(f"bpf {_rate(cost.bpf_run_ns_per_s)}{per_sample}", PieceKind.VALUE))
    lost = f"lost {snapshot.lost_total}"
    if snapshot.lost_total and causes and not compact:
        # The causes of the figure shown: informational counters (a walk that stopped short,
        # a thread without Python frames) are not in it.
        counted = sorted(
            (
                (n, name)
                for name, n in snapshot.lost.items()
                if n and name not in INFORMATIONAL_LOST
            ),
            # A full map first, whatever its count: it is the cause the user can act on (a
            # bigger map), and a narrow bar that names one cause must not hide it behind
            # collisions. Then the biggest.
            key=lambda item: (not item[1].endswith("_full"), -item[0], item[1]),
        )
        # The first few, so the list (and its parenthesis) fits the bar.
        named = [f"{printable(name, 32)} {n}" for n, name in counted[:causes]]
        if len(counted) > causes:
            named.append("…")
        lost += f" ({', '.join(named)})"
    pieces.append(Piece(lost, PieceKind.WARN if snapshot.lost_total else PieceKind.VALUE))
    counts_fill = _fill(cost.counts_map_used, cost.counts_map_size)
    stack_fill = _fill(cost.stack_map_used, cost.stack_map_size)
    full = max(
        cost.counts_map_used / cost.counts_map_size if cost.counts_map_size else 0.0,
        cost.stack_map_used / cost.stack_map_size if cost.stack_map_size else 0.0,
    )
    fill = (
        f"maps {counts_fill}/{stack_fill}"
        if compact
        else f"maps {counts_fill} counts, {stack_fill} stacks"
    )
    pieces.append(Piece(fill, PieceKind.WARN if full > 0.9 else PieceKind.VALUE))
    if cost.unwind_rows_size:
        # The unwind tables' memory in the kernel: 16-byte rows, the array fixed at load.
        used = human_bytes(cost.unwind_rows_used * 16)
        size = human_bytes(cost.unwind_rows_size * 16)
        tables_full = cost.unwind_rows_used / cost.unwind_rows_size > 0.9
        pieces.append(
            Piece(
                f"tables {used}" if compact else f"unwind tables {used} of {size}",
                PieceKind.WARN if tables_full else PieceKind.VALUE,
            )
        )
    if snapshot.headers:
        # A token, not the description: the bar is perftop's cost, and the line is short.
        pieces.append(
            Piece(f"headers {printable(short_headers(snapshot.headers), 32)}", PieceKind.LABEL)
        )
    return pieces


def session_facts(snapshot: Interval | None) -> list[tuple[str, str]]:
    """What this session samples with, for the help screen's "This session": the lines the
    main screen has no room for (the kernel headers' whole description among them)."""
    if snapshot is None:
        return [("sampling", "no interval yet")]
    unwind = {
        "table": "unwind tables (.eh_frame), frame pointers where a binary has no table",
        "fp": "frame pointers only",
    }.get(snapshot.unwind, printable(snapshot.unwind, 80) or "not known")
    facts = [
        ("event", f"{printable(snapshot.event, 40)} @ {snapshot.frequency_hz} Hz"),
        ("stacks", printable(snapshot.stack_mode, 16)),
        ("user stacks by", unwind),
        ("Python frames", "walked" if snapshot.python_frames else "off"),
        ("kernel headers", printable(snapshot.headers, 300) or "-"),
    ]
    if snapshot.cgroups_unavailable:
        facts.append(("cgroups", printable(snapshot.cgroups_unavailable, 200)))
    facts.append(("more", "`perftop doctor` checks the machine"))
    return facts
