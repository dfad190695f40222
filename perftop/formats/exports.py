"""The profile formats' writers in one import: speedscope JSON and pprof."""

from __future__ import annotations

from perftop.formats.meta import ProfileMeta
from perftop.formats.pprof import pprof_bytes, pprof_profile
from perftop.formats.speedscope import SPEEDSCOPE_SCHEMA, speedscope_bytes, speedscope_profile

__all__ = [
    "SPEEDSCOPE_SCHEMA",
    "ProfileMeta",
    "pprof_bytes",
    "pprof_profile",
    "speedscope_bytes",
    "speedscope_profile",
]
