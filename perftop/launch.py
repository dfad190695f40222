"""The `perftop` command. The start-up boost (perftop/system/boost.py) is taken here, before
perftop's own modules are imported: on a busy machine everything before it runs at the
session's share of a CPU. The screen and batch mode alike: `--batch -n 1` without it took 8 s
to its line where the screen's first profile took 3."""

from __future__ import annotations

import sys


def boost_wanted(argv: list[str]) -> bool:
    """Whether these arguments could start live sampling, on the screen or in batch mode
    (parsing them comes later; a wrong guess only boosts or not the few milliseconds until the
    CLI knows). A replay compiles nothing; doctor and help print at once."""
    if argv[:1] == ["doctor"]:
        return False
    return not any(arg in ("-h", "--help") or arg.startswith("--replay") for arg in argv)


def main() -> int:
    argv = sys.argv[1:]
    boost = None
    if boost_wanted(argv):
        from perftop.system.boost import StartupBoost

        boost = StartupBoost.begin()
    try:
        from perftop.cli.main import main as cli_main

        return cli_main(argv, boost=boost)
    finally:
        if boost is not None:
            boost.end()
