"""Profiles in other tools' formats: speedscope JSON and pprof (gzipped profile.proto).

pprof's wire format is small and stable, so it is encoded here directly (varints and
length-delimited fields) rather than through generated protobuf code pinned to one runtime; the
tests decode the output with the protobuf library and the published schema.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from perftop import __version__
from perftop.model.samples import Frame, FunctionKey, StackSample

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


@dataclass(frozen=True, slots=True)
class ProfileMeta:
    event: str = "cpu-clock"
    frequency_hz: int = 99
    duration_s: float = 0.0
    start_time: float = 0.0  # wall clock, seconds since the epoch


def _frame_name(frame: Frame) -> str:
    return frame.symbol + (" [k]" if frame.kernel else "")


def _speedscope_frame(frame: Frame) -> dict[str, str | int]:
    """speedscope's frame: a name, and where it is. A frame here is a function (the stacks'
    frames are shared by function), so a Python one's line is the function's first line."""
    if frame.python is None:
        return {"name": _frame_name(frame), "file": frame.module}
    return {"name": frame.symbol, "file": frame.python.filename, "line": frame.python.first_line}


def speedscope_profile(
    stacks: Sequence[StackSample], meta: ProfileMeta, name: str
) -> dict[str, Any]:
    """One sampled profile per process, frames shared, root first as speedscope wants."""
    frames: list[dict[str, str | int]] = []
    frame_index: dict[FunctionKey, int] = {}
    by_process: dict[tuple[int, str], tuple[list[list[int]], list[int]]] = {}

    def index_of(frame: Frame) -> int:
        key = (frame.symbol, frame.module, frame.kernel)
        found = frame_index.get(key)
        if found is None:
            found = frame_index[key] = len(frames)
            frames.append(_speedscope_frame(frame))
        return found

    for stack in stacks:
        samples, weights = by_process.setdefault((stack.pid, stack.comm), ([], []))
        samples.append([index_of(frame) for frame in stack.frames])
        weights.append(stack.samples)

    profiles = []
    for (pid, comm), (samples, weights) in sorted(
        by_process.items(), key=lambda item: -sum(item[1][1])
    ):
        profiles.append(
            {
                "type": "sampled",
                "name": f"{comm} (pid {pid})",
                "unit": "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        )
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "name": name,
        "exporter": f"perftop {__version__}",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": profiles,
    }


def speedscope_bytes(stacks: Sequence[StackSample], meta: ProfileMeta, name: str) -> bytes:
    return json.dumps(speedscope_profile(stacks, meta, name), ensure_ascii=True).encode()


# -- pprof --------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are ten-byte varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_packed(number: int, values: Iterable[int]) -> bytes:
    payload = b"".join(_varint(value) for value in values)
    return _field_bytes(number, payload) if payload else b""


class _Strings:
    def __init__(self) -> None:
        self.table: list[str] = [""]
        self._index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.table)
            self.table.append(text)
        return found


def _clock_event(event: str) -> bool:
    return event in ("cpu-clock", "task-clock")


@dataclass(frozen=True, slots=True)
class _PprofFunction:
    name: str
    filename: str
    start_line: int = 0  # 0: unknown, as proto3 leaves an unset field


def _pprof_function(frame: Frame) -> _PprofFunction:
    code = frame.python
    if code is None:
        return _PprofFunction(frame.symbol, frame.module)
    # pprof shows a function with its file and line itself: the bare qualname, not the symbol.
    return _PprofFunction(code.qualname, code.filename, code.first_line)


def pprof_profile(stacks: Sequence[StackSample], meta: ProfileMeta) -> bytes:
    """An uncompressed profile.proto message: values are [samples/count, event/unit].

    A Function is a function; a Location is a place in one, so a Python function has one
    Location per line it was seen executing (Line.line), and a native one a single Location
    without a line (perftop reads no line tables)."""
    strings = _Strings()
    mappings: dict[str, int] = {}
    python_mappings: set[int] = set()  # their functions have file names and line numbers
    functions: dict[_PprofFunction, int] = {}
    function_ids: dict[FunctionKey, int] = {}
    locations: dict[tuple[int, int], tuple[int, int]] = {}  # (function, line) -> id, mapping
    frame_locations: dict[Frame, int] = {}
    body = bytearray()

    period_unit = "nanoseconds" if _clock_event(meta.event) else "count"
    period_type = "cpu" if _clock_event(meta.event) else meta.event
    for type_name, unit in (("samples", "count"), (period_type, period_unit)):
        body += _field_bytes(
            1, _field_varint(1, strings(type_name)) + _field_varint(2, strings(unit))
        )

    def location_of(frame: Frame) -> int:
        key = (frame.symbol, frame.module, frame.kernel)
        function_id = function_ids.get(key)
        if function_id is None:
            function = _pprof_function(frame)
            function_id = function_ids[key] = functions.setdefault(function, len(functions) + 1)
        line = 0 if frame.python is None or frame.python.line is None else frame.python.line
        location = locations.get((function_id, line))
        if location is None:
            mapping_id = mappings.setdefault(frame.module, len(mappings) + 1)
            if frame.python is not None:
                python_mappings.add(mapping_id)
            location = locations[(function_id, line)] = (len(locations) + 1, mapping_id)
        return location[0]

    for stack in stacks:
        location_ids = []
        for frame in reversed(stack.frames):  # pprof wants the leaf first
            location_id = frame_locations.get(frame)
            if location_id is None:
                location_id = frame_locations[frame] = location_of(frame)
            location_ids.append(location_id)
        labels = (
            _field_bytes(3, _field_varint(1, strings("pid")) + _field_varint(3, stack.pid))
            + _field_bytes(3, _field_varint(1, strings("tid")) + _field_varint(3, stack.tid))
            + _field_bytes(
                3, _field_varint(1, strings("comm")) + _field_varint(2, strings(stack.comm))
            )
        )
        sample = _field_packed(1, location_ids) + _field_packed(2, [stack.samples, stack.period])
        body += _field_bytes(2, sample + labels)

    for module, mapping_id in mappings.items():
        python = mapping_id in python_mappings
        mapping = (
            _field_varint(1, mapping_id)
            + _field_varint(5, strings(module))
            + _field_varint(7, 1)  # has_functions
            + _field_varint(8, int(python))  # has_filenames
            + _field_varint(9, int(python))  # has_line_numbers
        )
        body += _field_bytes(3, mapping)
    for (function_id, line_number), (location_id, mapping_id) in locations.items():
        line = _field_varint(1, function_id) + _field_varint(2, line_number)
        encoded = (
            _field_varint(1, location_id) + _field_varint(2, mapping_id) + _field_bytes(4, line)
        )
        body += _field_bytes(4, encoded)
    for function, function_id in functions.items():
        encoded = (
            _field_varint(1, function_id)
            + _field_varint(2, strings(function.name))
            + _field_varint(3, strings(function.name))
            + _field_varint(4, strings(function.filename))
            + _field_varint(5, function.start_line)
        )
        body += _field_bytes(5, encoded)

    comment = strings(f"perftop {__version__}: {meta.event} at {meta.frequency_hz} Hz")
    tail = bytearray()
    tail += _field_varint(9, int(meta.start_time * 1e9))
    tail += _field_varint(10, int(meta.duration_s * 1e9))
    tail += _field_bytes(
        11, _field_varint(1, strings(period_type)) + _field_varint(2, strings(period_unit))
    )
    period = round(1e9 / meta.frequency_hz) if _clock_event(meta.event) and meta.frequency_hz else 1
    tail += _field_varint(12, period)
    tail += _field_packed(13, [comment])
    # The string table last: every index above has been assigned by now.
    strings_part = b"".join(
        _field_bytes(6, text.encode("utf-8", "replace")) for text in strings.table
    )
    return bytes(body) + strings_part + bytes(tail)


def pprof_bytes(stacks: Sequence[StackSample], meta: ProfileMeta) -> bytes:
    """Gzipped, as pprof and its readers expect on disk."""
    return gzip.compress(pprof_profile(stacks, meta), mtime=int(meta.start_time or time.time()))
