"""Recorded sessions: one JSON object per line, one line per interval.

A recording is everything an interval holds, so a replay shows exactly what the live screen showed
(and tests can run the real UI on real data without root). Frames repeat across stacks, so each
line carries its own frame table and stacks refer to frames by index; lines stay independent, which
keeps a recording cut short by a crash readable up to its last complete line.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any

from perftop.formats.files import ExportError, ExportExists, open_export
from perftop.model.errors import SourceError
from perftop.model.modes import StackMode
from perftop.model.reasons import Unresolved
from perftop.model.samples import (
    CgroupInfo,
    CpuStat,
    Frame,
    Interval,
    NativeCode,
    ProcessInfo,
    ProcessMapping,
    PythonCode,
    SamplerCost,
    StackSample,
)

FORMAT = "perftop-recording/4"
# Version 1 also held the aggregated tables (processes with their shares, functions); they are
# derived from the stacks, so a replay of one reads its process details and ignores the rest.
# Version 3 added Python frames (a frame row's fifth value) and `python_frames`: a perftop that
# reads only 1 and 2 then says the file is newer instead of calling a Python frame damage.
# Version 4 added cgroups (a stack row's seventh value, the cgroup id; `cgroups`, each id's
# path, name and CPU figures; `cgroup_filter` and `cgroups_unavailable`), and where native
# frames are (a frame row's sixth value: binary path, build id, function offset, source file
# and line) with each process's `mappings`, for pprof.
FORMATS_READ = ("perftop-recording/1", "perftop-recording/2", "perftop-recording/3", FORMAT)


class RecordingError(SourceError):
    """A recording that cannot be written or read, said in one line. A SourceError, since a
    replay's source raises it (perftop.sampling.source.SourceError is the same class)."""


# Encoding -----------------------------------------------------------------------------------


def _encode_frame(frame: Frame) -> list[Any]:
    reason = frame.unresolved_reason
    row = [frame.symbol, frame.module, frame.kernel, None if reason is None else reason.name]
    code = frame.python
    native = frame.native
    if code is not None or native is not None:  # else the four values it always had
        row.append(
            None if code is None else [code.qualname, code.filename, code.first_line, code.line]
        )
    if native is not None:
        row.append(list(native))
    return row


def _encode_info(info: ProcessInfo) -> dict[str, Any]:
    return {
        "user": info.user,
        "cmdline": info.cmdline,
        "threads": info.threads,
        "cpu_percent": info.cpu_percent,
        "rss_bytes": info.rss_bytes,
        "exited": info.exited,
        "kernel_thread": info.kernel_thread,
        "name": info.name,
    }


def _encode_cost(cost: SamplerCost) -> dict[str, Any]:
    return {
        "cpu_percent": cost.cpu_percent,
        "bpf_run_ns_per_s": cost.bpf_run_ns_per_s,
        "bpf_ns_per_sample": cost.bpf_ns_per_sample,
        "counts_map_used": cost.counts_map_used,
        "counts_map_size": cost.counts_map_size,
        "stack_map_used": cost.stack_map_used,
        "stack_map_size": cost.stack_map_size,
        "unwind_rows_used": cost.unwind_rows_used,
        "unwind_rows_size": cost.unwind_rows_size,
        "drain_ms": cost.drain_ms,
        "drain_cpu_ms": cost.drain_cpu_ms,
    }


def _encode_cgroup(info: CgroupInfo) -> list[Any]:
    return [
        info.cgroup_id,
        info.path,
        info.name,
        info.container,
        info.usage_percent,
        info.throttled_usec,
        info.quota,
        info.removed,
    ]


def encode_interval(interval: Interval) -> dict[str, Any]:
    """The JSON-ready form of one interval, with its frames interned in a per-line table."""
    frame_index: dict[Frame, int] = {}
    frames: list[list[Any]] = []

    def intern(frame: Frame) -> int:
        index = frame_index.get(frame)
        if index is None:
            index = frame_index[frame] = len(frames)
            frames.append(_encode_frame(frame))
        return index

    stacks = [
        [s.pid, s.tid, s.comm, [intern(f) for f in s.frames], s.samples, s.period, s.cgroup_id]
        for s in interval.stacks
    ]
    return {
        "format": FORMAT,
        "timestamp": interval.timestamp,
        "interval_s": interval.interval_s,
        "event": interval.event,
        "frequency_hz": interval.frequency_hz,
        "lost": dict(interval.lost),
        "cpus": [[c.cpu, c.samples, c.idle_samples] for c in interval.cpus],
        "frames": frames,
        "stacks": stacks,
        "processes": [
            {"pid": pid, "info": _encode_info(info)} for pid, info in interval.processes.items()
        ],
        "stack_mode": interval.stack_mode,
        "python_frames": interval.python_frames,
        "unwind": interval.unwind,
        "pid_filter": list(interval.pid_filter),
        "headers": interval.headers,
        "cgroups": [_encode_cgroup(info) for info in interval.cgroups.values()],
        "cgroup_filter": list(interval.cgroup_filter),
        "cgroups_unavailable": interval.cgroups_unavailable,
        "cost": _encode_cost(interval.cost),
        "notices": list(interval.notices),
        "preview": interval.preview,
        "mappings": [
            [pid, [list(mapping) for mapping in mappings]]
            for pid, mappings in interval.mappings.items()
        ],
    }


# Decoding: every value is checked, so a damaged file says where instead of raising KeyError ---


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise RecordingError(f"missing field '{name}'")
    return _check(data[name], kind, name)


def _check(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    # bool is an int in Python; a count written as `true` is damage, not a count.
    if isinstance(value, bool) and kind in (int, float):
        raise RecordingError(f"'{what}' should be a number, not {value!r}")
    if kind is float:
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise RecordingError(f"'{what}' should be a finite number, not {value!r}")
        return float(value)
    if not isinstance(value, kind):
        raise RecordingError(f"'{what}' has the wrong type: {value!r:.60}")
    return value


def _optional_float(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    return None if value is None else _check(value, float, name)


def _row(value: Any, length: int, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != length:
        raise RecordingError(f"each entry of '{what}' should be a list of {length} values")
    return value


def _decode_reason(value: Any) -> Unresolved | None:
    if value is None:
        return None
    text = _check(value, str, "frame reason")
    # A member's name; recordings made before the reasons were an enum hold the member's text.
    return Unresolved.from_name(text) or Unresolved.from_text(text)


def _decode_stack_mode(text: str) -> StackMode:
    try:
        return StackMode(text)
    except ValueError:
        raise RecordingError(
            f"'stack_mode' is not one of {', '.join(StackMode)}: {text!r:.40}"
        ) from None


def _decode_python(value: Any) -> PythonCode | None:
    if value is None:
        return None
    qualname, filename, first_line, line = _row(value, 4, "frame python")
    return PythonCode(
        qualname=_check(qualname, str, "frame python qualname"),
        filename=_check(filename, str, "frame python filename"),
        first_line=_check(first_line, int, "frame python first_line"),
        line=None if line is None else _check(line, int, "frame python line"),
    )


def _decode_native(value: Any) -> NativeCode | None:
    if value is None:
        return None
    path, build_id, offset, source, line = _row(value, 5, "frame native")
    return NativeCode(
        path=_check(path, str, "frame native path"),
        build_id=_check(build_id, str, "frame native build id"),
        offset=_check(offset, int, "frame native offset"),
        source=_check(source, str, "frame native source"),
        line=_check(line, int, "frame native line"),
    )


def _decode_mappings(value: Any) -> dict[int, tuple[ProcessMapping, ...]]:
    found = {}
    for row in _check(value, list, "mappings"):
        pid, mappings = _row(row, 2, "mappings")
        decoded = []
        for mapping in _check(mappings, list, "process mappings"):
            path, build_id, start, limit, offset = _row(mapping, 5, "process mappings")
            decoded.append(
                ProcessMapping(
                    _check(path, str, "mapping path"),
                    _check(build_id, str, "mapping build id"),
                    _check(start, int, "mapping start"),
                    _check(limit, int, "mapping limit"),
                    _check(offset, int, "mapping offset"),
                )
            )
        found[_check(pid, int, "mappings pid")] = tuple(decoded)
    return found


def _decode_frame(value: Any) -> Frame:
    # Four values; a fifth for a Python frame's code (made before Python frames: four); a
    # sixth for where a native frame is (made before perftop kept it: five at most).
    if not isinstance(value, list) or len(value) not in (4, 5, 6):
        raise RecordingError("each entry of 'frames' should be a list of 4 to 6 values")
    symbol, module, kernel, reason, python, native = [*value, None, None][:6]
    frame = Frame(
        symbol=_check(symbol, str, "frame symbol"),
        module=_check(module, str, "frame module"),
        kernel=_check(kernel, bool, "frame kernel"),
        unresolved_reason=_decode_reason(reason),
        python=_decode_python(python),
        native=_decode_native(native),
    )
    if frame.kernel and frame.python is not None:
        raise RecordingError(f"kernel frame {frame.symbol!r:.40} has Python code")
    return frame


class FrameMemo:
    """Frames decoded once for a whole recording, by their recorded form.

    An interval holds every frame its stacks use, and the next interval holds most of them
    again: decoding each anew was most of a replay's reading. The key is the value's repr, not
    the value: JSON's `true` and `1` are equal (and hash alike) in Python but are not the same
    frame field. A memo holds at most `limit` frames, then starts over.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self._frames: dict[str, Frame] = {}
        self._limit = limit

    def decode(self, value: Any) -> Frame:
        key = repr(value)
        frame = self._frames.get(key)
        if frame is None:
            frame = _decode_frame(value)
            if len(self._frames) >= self._limit:
                self._frames.clear()
            self._frames[key] = frame
        return frame


def _frame_chain(indexes: Any, frames: list[Frame]) -> tuple[Frame, ...]:
    # The common case checked by C loops (types, then bounds); the slow path names the bad one.
    indexes = _check(indexes, list, "stack frames")
    if not indexes:
        return ()
    if set(map(type, indexes)) == {int} and min(indexes) >= 0 and max(indexes) < len(frames):
        return tuple(map(frames.__getitem__, indexes))
    for index in indexes:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(frames):
            raise RecordingError(f"stack refers to frame {index!r}, which is not in 'frames'")
    raise AssertionError("unreachable: every index was valid")


def _decode_stack(value: Any, frames: list[Frame]) -> StackSample:
    # Six values, and a seventh, the cgroup id, from format 4.
    if not isinstance(value, list) or len(value) not in (6, 7):
        raise RecordingError("each entry of 'stacks' should be a list of 6 or 7 values")
    pid, tid, comm, indexes, samples, period, cgroup_id = value if len(value) == 7 else [*value, 0]
    chain = _frame_chain(indexes, frames)
    # Checked at once (type, not isinstance: JSON's true is no pid); the checks one by one
    # only to say which field is wrong.
    if not (
        type(pid) is int
        and type(tid) is int
        and type(comm) is str
        and type(samples) is int
        and type(period) is int
        and type(cgroup_id) is int
    ):
        _check(pid, int, "stack pid")
        _check(tid, int, "stack tid")
        _check(comm, str, "stack comm")
        _check(samples, int, "stack samples")
        _check(period, int, "stack period")
        _check(cgroup_id, int, "stack cgroup")
    return StackSample(
        pid=pid,
        tid=tid,
        comm=comm,
        frames=chain,
        samples=samples,
        period=period,
        cgroup_id=cgroup_id,
    )


def _optional(value: Any, kind: type, what: str) -> Any:
    return None if value is None else _check(value, kind, what)


def _decode_cgroup(value: Any) -> CgroupInfo:
    cgroup_id, path, name, container, usage, throttled, quota, removed = _row(value, 8, "cgroups")
    return CgroupInfo(
        cgroup_id=_check(cgroup_id, int, "cgroup id"),
        path=_check(path, str, "cgroup path"),
        name=_check(name, str, "cgroup name"),
        container=_optional(container, str, "cgroup container"),
        usage_percent=_optional(usage, float, "cgroup usage_percent"),
        throttled_usec=_optional(throttled, int, "cgroup throttled_usec"),
        quota=_optional(quota, float, "cgroup quota"),
        removed=_check(removed, bool, "cgroup removed"),
    )


def _decode_process(value: Any) -> ProcessInfo:
    data = _check(value, dict, "processes")
    info = _field(data, "info", dict)
    return ProcessInfo(
        pid=_field(data, "pid", int),
        user=_field(info, "user", str),
        cmdline=_field(info, "cmdline", str),
        threads=_field(info, "threads", int),
        cpu_percent=_field(info, "cpu_percent", float),
        rss_bytes=_field(info, "rss_bytes", int),
        exited=_field(info, "exited", bool),
        kernel_thread=_field(info, "kernel_thread", bool),
        # Added with format 2; before it a process without samples was not recorded.
        name=_check(info.get("name", ""), str, "name"),
    )


def _decode_cost(data: dict[str, Any]) -> SamplerCost:
    return SamplerCost(
        cpu_percent=_field(data, "cpu_percent", float),
        bpf_run_ns_per_s=_optional_float(data, "bpf_run_ns_per_s"),
        bpf_ns_per_sample=_optional_float(data, "bpf_ns_per_sample"),
        counts_map_used=_field(data, "counts_map_used", int),
        counts_map_size=_field(data, "counts_map_size", int),
        stack_map_used=_field(data, "stack_map_used", int),
        stack_map_size=_field(data, "stack_map_size", int),
        # Added with the unwind tables; earlier recordings read as 0 (none).
        unwind_rows_used=_check(data.get("unwind_rows_used", 0), int, "unwind_rows_used"),
        unwind_rows_size=_check(data.get("unwind_rows_size", 0), int, "unwind_rows_size"),
        drain_ms=_field(data, "drain_ms", float),
        # Added after the first recordings were made; those read as 0.
        drain_cpu_ms=_optional_float(data, "drain_cpu_ms") or 0.0,
    )


def decode_interval(data: Any, memo: FrameMemo | None = None) -> Interval:
    """The interval `encode_interval` made; RecordingError says what is wrong otherwise.
    `memo` carries decoded frames from one interval of a recording to the next."""
    data = _check(data, dict, "interval")
    if data.get("format") not in FORMATS_READ:
        raise RecordingError(f"not a perftop recording line (format {data.get('format')!r})")
    decode_frame = _decode_frame if memo is None else memo.decode
    frames = [decode_frame(f) for f in _field(data, "frames", list)]
    lost = {
        _check(name, str, "lost counter"): _check(count, int, "lost count")
        for name, count in _field(data, "lost", dict).items()
    }
    cpus = tuple(
        CpuStat(
            _check(cpu, int, "cpu"),
            _check(samples, int, "cpu samples"),
            _check(idle, int, "cpu idle samples"),
        )
        for cpu, samples, idle in (_row(c, 3, "cpus") for c in _field(data, "cpus", list))
    )
    infos = (_decode_process(p) for p in _field(data, "processes", list))
    return Interval(
        timestamp=_field(data, "timestamp", float),
        interval_s=_field(data, "interval_s", float),
        event=_field(data, "event", str),
        frequency_hz=_field(data, "frequency_hz", int),
        lost=lost,
        cpus=cpus,
        stacks=tuple(_decode_stack(s, frames) for s in _field(data, "stacks", list)),
        processes={info.pid: info for info in infos},
        stack_mode=_decode_stack_mode(_field(data, "stack_mode", str)),
        # Recordings made before Python frames existed have no such field: they make no claim,
        # and the screen says "no Python frames" only for a session that turned them off.
        python_frames=_check(data.get("python_frames", True), bool, "python_frames"),
        unwind=_check(data.get("unwind", ""), str, "unwind")[:80],
        pid_filter=tuple(_check(p, int, "pid_filter") for p in _field(data, "pid_filter", list)),
        headers=_field(data, "headers", str),
        # Added with format 4; older recordings know no cgroups.
        cgroups={
            info.cgroup_id: info
            for info in (
                _decode_cgroup(c) for c in _check(data.get("cgroups", []), list, "cgroups")
            )
        },
        cgroup_filter=tuple(
            _check(path, str, "cgroup_filter")
            for path in _check(data.get("cgroup_filter", []), list, "cgroup_filter")
        ),
        cgroups_unavailable=_check(data.get("cgroups_unavailable", ""), str, "cgroups_unavailable"),
        cost=_decode_cost(_field(data, "cost", dict)),
        notices=tuple(_check(n, str, "notices") for n in _field(data, "notices", list)),
        preview=_check(data.get("preview", False), bool, "preview"),
        mappings=_decode_mappings(data.get("mappings", [])),
    )


# Files --------------------------------------------------------------------------------------


class RecordingWriter:
    """Appends snapshots to a new file. The file must not exist: perftop often runs as root, so
    it never overwrites and never follows a symlink someone else planted at that path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # 0o600: command lines of every process end up in here, and some carry secrets.
            handle = open_export(path, permissions=0o600)
        except ExportExists:
            raise RecordingError(f"{path}: already exists; perftop does not overwrite") from None
        except ExportError as error:
            raise RecordingError(f"cannot create the recording: {error}") from None
        self._file: IO[str] = io.TextIOWrapper(handle, encoding="ascii", newline="\n")

    def write(self, interval: Interval) -> None:
        try:
            # ASCII with escapes: a lone surrogate from a mangled name still round-trips.
            line = json.dumps(encode_interval(interval), separators=(",", ":"), allow_nan=False)
        except ValueError as error:
            raise RecordingError(f"{self.path}: interval cannot be recorded: {error}") from None
        try:
            self._file.write(line + "\n")
            # One flush per interval, so a crash loses at most the line being written.
            self._file.flush()
        except OSError as error:
            raise RecordingError(f"{self.path}: write failed: {error.strerror}") from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_recording(path: Path) -> Generator[Interval, None, None]:
    """The intervals of a recording, read one line at a time so long sessions need little memory.

    A last line without its newline is what a killed perftop leaves behind; it is skipped when it
    does not parse. Anything else that does not parse is an error naming the line.
    """
    try:
        file = path.open("r", encoding="utf-8", newline="\n")
    except OSError as error:
        raise RecordingError(f"{path}: cannot open the recording: {error.strerror}") from None
    memo = FrameMemo()
    with file:
        number = 0
        try:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as error:
                    if not line.endswith("\n"):
                        return
                    raise RecordingError(f"{path}:{number}: not JSON ({error.msg})") from None
                try:
                    yield decode_interval(data, memo)
                except RecordingError as error:
                    raise RecordingError(f"{path}:{number}: {error}") from None
        except UnicodeDecodeError:
            raise RecordingError(f"{path}: near line {number + 1}: not UTF-8 text") from None


def read_recording(path: Path) -> list[Interval]:
    """Every interval of a recording; RecordingError (a SourceError) when there are none."""
    intervals = list(iter_recording(path))
    if not intervals:
        raise RecordingError(f"{path}: the recording holds no snapshots")
    return intervals
