"""The `perftop` command. The screen's start-up boost (perftop/boost.py) is taken here, before
perftop's own modules are imported: on a busy machine everything before it runs at the
session's share of a CPU."""

from __future__ import annotations

import sys


def screen_wanted(argv: list[str]) -> bool:
    """Whether these arguments could start the live screen (parsing them comes later; a wrong
    guess only boosts or not the few milliseconds until the CLI knows)."""
    if argv[:1] == ["doctor"]:
        return False
    return not any(arg in ("--batch", "-h", "--help") or arg.startswith("--replay") for arg in argv)


def main() -> int:
    argv = sys.argv[1:]
    boost = None
    if screen_wanted(argv):
        from perftop.system.boost import StartupBoost

        boost = StartupBoost.begin()
    try:
        from perftop.cli.main import main as cli_main

        return cli_main(argv, boost=boost)
    finally:
        if boost is not None:
            boost.end()
