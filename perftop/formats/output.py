"""Batch output: text like `perf top --stdio`, JSON lines, folded stacks.

Every string that came from another process goes through `printable` for text and folded output.
JSON carries the exact strings (json.dumps escapes every control character), so a consumer sees
what the process wrote and a terminal showing the JSON sees only escapes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple, TextIO

from perftop.model.samples import FunctionKey, StackSample
from perftop.model.stats import View
from perftop.model.units import human_bytes
from perftop.sanitize import printable


def header_line(view: View) -> str:
    parts = [
        f"perftop: {view.event} @ {view.frequency_hz} Hz",
        f"interval {view.interval_s:.2f} s",
        f"{view.samples} samples ({view.samples_per_second:.1f}/s)",
        f"idle {view.idle_samples}",
        f"lost {view.lost_total}",
    ]
    if view.pid_filter:
        parts.append("pid " + ",".join(map(str, view.pid_filter)))
    if view.cgroup_filter:
        parts.append("cgroup " + ",".join(printable(path, 80) for path in view.cgroup_filter))
    if view.stack_mode != "both":
        parts.append(f"{view.stack_mode} stacks")
    if view.unwind.startswith("fp"):
        parts.append(f"user stacks by {view.unwind.replace('fp', 'frame pointers', 1)}")
    return ", ".join(parts)


def format_text(view: View, top: int = 20) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(view.timestamp))
    lines = [f"{header_line(view)}  [{stamp}]"]
    lines.extend(f"notice: {printable(notice)}" for notice in view.notices)
    lines.append("")
    lines.append(
        f"{'PID':>8} {'USER':<10} {'COMM':<16} {'SAMPLES':>8} {'SHARE':>7} {'CPU%':>6} "
        f"{'THR':>4} {'RSS':>7}  COMMAND"
    )
    for process in view.processes[:top]:
        info = process.info
        state = " (exited)" if info.exited else ""
        lines.append(
            f"{process.pid:>8} {printable(info.user, 10):<10} {printable(process.comm):<16} "
            f"{process.samples:>8} {process.percent:>6.2f}% {info.cpu_percent:>6.1f} "
            f"{info.threads:>4} {human_bytes(info.rss_bytes):>7}  "
            f"{printable(info.cmdline, 200)}{state}"
        )
    lines.append("")
    lines.extend(cgroup_lines(view, top))
    lines.append("")
    lines.append(f"{'SELF':>7} {'TOTAL':>7} {'SAMPLES':>8} {'':<4} {'SYMBOL':<50} MODULE")
    for function in view.functions[:top]:
        lines.append(
            f"{function.self_percent:>6.2f}% {function.total_percent:>6.2f}% "
            f"{function.self_samples:>8} {function.kind.mark:<4} "
            f"{printable(function.symbol, 200):<50} "
            f"{printable(function.module, 60)}"
        )
    return "\n".join(lines) + "\n"


def _usage_text(usage: float | None) -> str:
    return "-" if usage is None else f"{usage:.1f}"


def _throttled_text(throttled_usec: int | None) -> str:
    return "-" if throttled_usec is None else f"{throttled_usec / 1000:.0f}ms"


def _quota_text(quota: float | None) -> str:
    return "max" if quota is None else f"{quota:.2f}"


def cgroup_lines(view: View, top: int = 20) -> list[str]:
    """The cgroups section: each cgroup's share of the samples beside its own cpu.stat usage
    (of one CPU), throttling and cpu.max quota; or, without cgroup v2, why not (once)."""
    if view.cgroups_unavailable:
        return [f"cgroups: {printable(view.cgroups_unavailable)}"]
    lines = [
        f"{'SAMPLES':>8} {'SHARE':>7} {'CPU%':>6} {'THROTTLED':>9} {'QUOTA':>6}  "
        f"{'NAME':<24} CGROUP"
    ]
    for row in view.cgroups[:top]:
        info = row.info
        state = " (removed)" if info.removed else ""
        lines.append(
            f"{row.samples:>8} {row.percent:>6.2f}% {_usage_text(info.usage_percent):>6} "
            f"{_throttled_text(info.throttled_usec):>9} {_quota_text(info.quota):>6}  "
            f"{printable(row.name, 24):<24} {printable(row.cgroup, 200)}{state}"
        )
    return lines


def _cgroups_json(view: View) -> list[dict[str, Any]]:
    return [
        {
            "cgroup": row.cgroup,
            "name": row.name,
            "container": row.info.container,
            "samples": row.samples,
            "percent": round(row.percent, 3),
            "usage_percent": None
            if row.info.usage_percent is None
            else round(row.info.usage_percent, 3),
            "throttled_usec": row.info.throttled_usec,
            "quota": row.info.quota,
            "removed": row.info.removed,
        }
        for row in view.cgroups
    ]


def view_json(view: View) -> dict[str, Any]:
    return {
        "timestamp": view.timestamp,
        "interval_s": round(view.interval_s, 6),
        "event": view.event,
        "frequency_hz": view.frequency_hz,
        "samples": view.samples,
        "idle_samples": view.idle_samples,
        "lost": dict(view.lost),
        "stack_mode": view.stack_mode,
        "unwind": view.unwind,
        "pid_filter": list(view.pid_filter),
        "cgroup_filter": list(view.cgroup_filter),
        "headers": view.headers,
        "notices": list(view.notices),
        "cpus": [
            {"cpu": cpu.cpu, "samples": cpu.samples, "idle_samples": cpu.idle_samples}
            for cpu in view.cpus
        ],
        "processes": [
            {
                "pid": process.pid,
                "comm": process.comm,
                "user": process.info.user,
                "cmdline": process.info.cmdline,
                "samples": process.samples,
                "percent": round(process.percent, 3),
                "threads": process.info.threads,
                "cpu_percent": round(process.info.cpu_percent, 2),
                "rss_bytes": process.info.rss_bytes,
                "exited": process.info.exited,
                "cgroup": process.cgroup,
                "container": process.container,
            }
            for process in view.processes
        ],
        "cgroups": _cgroups_json(view),
        # Why "cgroups" is empty and every "cgroup" null: cgroup v1 only. null when available.
        "cgroups_unavailable": view.cgroups_unavailable or None,
        "functions": _functions_json(view),
        "cost": {
            "cpu_percent": round(view.cost.cpu_percent, 2),
            "bpf_run_ns_per_s": view.cost.bpf_run_ns_per_s,
            "bpf_ns_per_sample": view.cost.bpf_ns_per_sample,
            "counts_map_used": view.cost.counts_map_used,
            "counts_map_size": view.cost.counts_map_size,
            "stack_map_used": view.cost.stack_map_used,
            "stack_map_size": view.cost.stack_map_size,
            "drain_ms": round(view.cost.drain_ms, 3),
            "drain_cpu_ms": round(view.cost.drain_cpu_ms, 3),
        },
    }


class _PythonLines(NamedTuple):
    first_line: int
    lines: Counter[int]  # executing line -> samples of the stacks with the function on it


def _python_lines(stacks: Iterable[StackSample]) -> dict[FunctionKey, _PythonLines]:
    """Each Python function's first line, and the samples of the stacks it was on each line in.

    Inclusive: a Python frame is seldom the leaf (the interpreter's C code runs below it), and
    a caller's line is where its callees' time went. A line counts once per stack, as the
    functions' totals count recursion once."""
    found: dict[FunctionKey, _PythonLines] = {}
    for stack in stacks:
        seen: set[tuple[FunctionKey, int]] = set()
        for frame in stack.frames:
            code = frame.python
            if code is None:
                continue
            key = (frame.symbol, frame.module, frame.kernel)
            entry = found.get(key)
            if entry is None:
                entry = found[key] = _PythonLines(code.first_line, Counter())
            if code.line is not None and (key, code.line) not in seen:
                seen.add((key, code.line))
                entry.lines[code.line] += stack.samples
    return found


def _functions_json(view: View) -> list[dict[str, Any]]:
    python = _python_lines(view.stacks) if any(f.python for f in view.functions) else {}
    rows = []
    for function in view.functions:
        row: dict[str, Any] = {
            "symbol": function.symbol,
            "module": function.module,
            "kernel": function.kernel,
            "kind": function.kind.value,
            "self_samples": function.self_samples,
            "self_percent": round(function.self_percent, 3),
            "total_samples": function.total_samples,
            "total_percent": round(function.total_percent, 3),
        }
        lines = python.get((function.symbol, function.module, function.kernel))
        if function.python and lines is not None:
            hottest = lines.lines.most_common(1)
            # A function runs on many lines; "line" is the one most of its samples were on.
            row["file"] = function.module
            row["line"] = hottest[0][0] if hottest else None
            row["first_line"] = lines.first_line
        rows.append(row)
    return rows


def format_json(view: View) -> str:
    # ensure_ascii: every control character and non-ASCII code point becomes a \u escape.
    return json.dumps(view_json(view), ensure_ascii=True, separators=(",", ":")) + "\n"


def folded_frame(name: str) -> str:
    """A frame name safe inside a folded line: printable, and no ';' (the frame separator)."""
    return printable(name).replace(";", ":")


class FoldedAccumulator:
    """Folded stacks summed over the whole run, written at exit. Each stack's root is its
    command, as flamegraph.pl's readers expect; with `process_roots` it is `comm-pid`, so two
    processes of one name are two towers."""

    def __init__(self, process_roots: bool = False) -> None:
        self._counts: Counter[str] = Counter()
        self._process_roots = process_roots

    def add(self, stacks: Iterable[StackSample]) -> None:
        for stack in stacks:
            root = folded_frame(stack.comm) or "[unknown comm]"
            if self._process_roots:
                root = f"{root}-{stack.pid}"
            names = [root]
            names.extend(
                folded_frame(frame.symbol) + ("_[k]" if frame.kernel else "")
                for frame in stack.frames
            )
            self._counts[";".join(names)] += stack.samples

    def write(self, stream: TextIO) -> None:
        for path, count in sorted(self._counts.items()):
            stream.write(f"{path} {count}\n")
