"""What the first screen waits for: the modules `perftop` imports on its way to the screen
(perftop.launch -> perftop.cli.main -> the deferred source -> perftop.ui.lifecycle and the app)
leave out what only a key, a filter or the compile needs (bench/startup.py measures the
time). Checked in a fresh interpreter: this test process has imported everything already."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

SCREEN_PATH = (
    "perftop.launch",
    "perftop.cli.main",
    "perftop.sampling.deferred",
    "perftop.ui.lifecycle",
    "perftop.ui.app",
)
# Opened later, each imported when first used.
NOT_BEFORE_THE_FIRST_SCREEN = (
    "perftop.ui.widgets.flame_view",  # f
    "perftop.ui.widgets.export_dialog",  # x
    "perftop.ui.widgets.help_screen",  # ?
    "perftop.viewmodel.export",
    "perftop.sampling.cgroups",  # the cgroup prompt
    "perftop.formats.output",  # the encoders: batch mode and exports
    "perftop.formats.pprof",
    "perftop.formats.speedscope",
    "psutil",  # the preview list, on the sampler thread; the pid prompt
    "ctypes.util",  # find_library runs ldconfig: a child process before the first paint
    "bcc",  # the compile, on its own thread after the first paint
)


def imported_on_the_way_to_the_screen() -> set[str]:
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in SCREEN_PATH)
        + "print('\\n'.join(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_the_screen_path_imports_nothing_a_later_key_needs() -> None:
    imported = imported_on_the_way_to_the_screen()
    assert set(SCREEN_PATH) <= imported  # guards the guard: the imports did run
    assert sorted(imported & set(NOT_BEFORE_THE_FIRST_SCREEN)) == []


def test_the_heap_setting_before_the_screen_starts_no_process() -> None:
    """keep_large_blocks_in_mmap runs before the first screen: libc from the process itself."""
    code = (
        "import sys\n"
        "from perftop.system.memory import keep_large_blocks_in_mmap\n"
        "applied = keep_large_blocks_in_mmap()\n"
        "print(applied, 'ctypes.util' in sys.modules, 'subprocess' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "False", "False"]
