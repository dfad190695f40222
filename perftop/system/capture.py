"""Moved to perftop.system.stdio; sampling/bcc/source.py imports captured_fds from here until
it names the new module."""

from __future__ import annotations

from perftop.system.stdio import captured_fds as captured_fds
