"""speedscope's JSON file format: one sampled profile of the whole view, then one per process.

Weights are CPU time for the clock events, in nanoseconds: each stack's summed sample_period
(what the kernel says each sample stood for), or samples x 1e9/frequency where a source did not
keep periods. For a hardware event a period is a count of events, not time: weights are then
samples and the unit is speedscope's "none", and each profile's name says "samples".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from perftop import __version__
from perftop.formats.meta import ProfileMeta
from perftop.model.samples import Frame, FunctionKey, StackSample

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def _speedscope_frame(frame: Frame) -> dict[str, str | int]:
    """speedscope's frame: a name, and where it is. A frame here is a function (the stacks'
    frames are shared by function), so a Python one's line is the function's first line, and
    a native one's is its first line from DWARF when the binary has line info."""
    if frame.python is not None:
        return {
            "name": frame.symbol,
            "file": frame.python.filename,
            "line": frame.python.first_line,
        }
    name = frame.symbol + (" [k]" if frame.kernel else "")
    code = frame.native
    if code is not None and code.source:
        return {"name": name, "file": code.source, "line": code.line}
    return {"name": name, "file": frame.module}


def stack_weight(stack: StackSample, meta: ProfileMeta) -> int:
    """What a stack weighs: nanoseconds of CPU for a clock, samples otherwise."""
    if not meta.clock:
        return stack.samples
    return stack.period or stack.samples * meta.nominal_period


def speedscope_profile(
    stacks: Sequence[StackSample], meta: ProfileMeta, name: str
) -> dict[str, Any]:
    """The whole view first (what speedscope opens on), then each process, busiest first."""
    frames: list[dict[str, str | int]] = []
    frame_index: dict[FunctionKey, int] = {}
    whole: tuple[list[list[int]], list[int]] = ([], [])
    by_process: dict[tuple[int, str], tuple[list[list[int]], list[int]]] = {}
    unit = "nanoseconds" if meta.clock else "none"
    counted = "" if meta.clock else f" ({meta.event} samples)"

    def index_of(frame: Frame) -> int:
        key = (frame.symbol, frame.module, frame.kernel)
        found = frame_index.get(key)
        if found is None:
            found = frame_index[key] = len(frames)
            frames.append(_speedscope_frame(frame))
        return found

    for stack in stacks:
        chain = [index_of(frame) for frame in stack.frames]
        weight = stack_weight(stack, meta)
        samples, weights = by_process.setdefault((stack.pid, stack.comm), ([], []))
        samples.append(chain)
        weights.append(weight)
        whole[0].append(chain)
        whole[1].append(weight)

    def profile(title: str, samples: list[list[int]], weights: list[int]) -> dict[str, Any]:
        return {
            "type": "sampled",
            "name": title + counted,
            "unit": unit,
            "startValue": 0,
            "endValue": sum(weights),
            "samples": samples,
            "weights": weights,
        }

    profiles = [profile(name, *whole)]
    for (pid, comm), (samples, weights) in sorted(
        by_process.items(), key=lambda item: (-sum(item[1][1]), item[0][0])
    ):
        profiles.append(profile(f"{comm} (pid {pid})", samples, weights))
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
