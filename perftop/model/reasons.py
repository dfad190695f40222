"""Why a frame has no symbol, and what the user can do about it.

One member per reason the symbolizers give. The text is what the user reads (the stack pane,
recordings before perftop-recording kept member names); the remedy is keyed by member, so
rewording a reason can no longer silently lose its remedy, as matching words in the text could.
"""

from __future__ import annotations

from enum import Enum

JIT_REMEDY = (
    "Python 3.12+: run it with `python -X perf`; Node.js: --perf-basic-prof; Java: perf-map-agent"
)
_DEBUG_SYMBOLS = "install debug symbols for {module} (its -dbgsym or -debuginfo package)"
_REPLACED = (
    "the binary was replaced or deleted since the process started (an upgrade?), or lives "
    "in another mount namespace: restart the process"
)
_FRAME_POINTERS = "rebuild with -fno-omit-frame-pointer; user stacks are walked by frame pointers"
_MAPS_AS_ROOT = "run perftop as root to read its memory maps"


class Unresolved(Enum):
    """The member's value is its user-facing text."""

    STRIPPED = "stripped binary"
    NO_COVERING_SYMBOL = "no symbol covers this address"
    JIT = "JIT without a perf map"
    GONE = "process gone"
    NOT_MAPPED = "address not mapped (unwound without frame pointers?)"
    UNREADABLE = "binary unreadable (deleted, or in a gone namespace)"
    UNREADABLE_ELF = "unreadable ELF"
    # Least privilege (CAP_BPF + CAP_PERFMON, not root): the process is there, perftop may not look.
    MAPS_DENIED = "memory maps not readable: permission denied"
    ROOT_DENIED = "binary not reachable: permission denied (needs root or CAP_SYS_PTRACE)"
    MAP_FILES_DENIED = (
        "binary replaced or in another namespace; /proc/PID/map_files needs CAP_CHECKPOINT_RESTORE "
        "(+ CAP_DAC_READ_SEARCH for another user's process)"
    )
    # A perf map that is there but was not read: the process's own doing, or someone else's.
    PERF_MAP_SYMLINK = "perf map is a symlink (refused)"
    PERF_MAP_NOT_REGULAR = "perf map is not a regular file (refused)"
    PERF_MAP_FOREIGN_OWNER = "perf map owned by another user, not the process's user (refused)"
    PERF_MAP_TOO_LARGE = "perf map larger than 64 MiB (refused)"  # perfmap.MAX_MAP_BYTES
    KPTR = "kernel addresses hidden by kernel.kptr_restrict"
    NO_KERNEL_SYMBOL = "not in kallsyms"
    # Python frames (perftop.python): a CPython whose frames perftop cannot walk, and a frame
    # whose code object was freed (or no longer reads as one) before user space named it.
    PYTHON_UNSUPPORTED = "interpreter frames not supported for this CPython version"
    PYTHON_CODE_GONE = "Python code object freed before it was named"
    # The kernel's table walk ended short of the outermost frame (no rule for a caller's
    # address, its stack unreadable, a binary without tables and without frame pointers).
    UNWIND_STOPPED = "the stack walk stopped here: callers unknown"
    # A reason in a recording that no member has (a hand-edited file): shown, without a remedy.
    UNKNOWN = "no symbol (reason unknown)"

    # Frames hold a member and are hashed millions of times an interval: Enum.__hash__ is Python
    # code (hash of the name, +50% per unresolved frame's hash); members are singletons, so the
    # identity hash, in C, is as correct and as fast as a str's.
    __hash__ = object.__hash__

    @property
    def text(self) -> str:
        return str(self.value)

    def remedy(self, module: str) -> str | None:
        """What the user can do, naming `module` (already printable) where it helps."""
        remedy = _REMEDIES.get(self)
        return remedy.format(module=module) if remedy is not None else None

    @classmethod
    def from_name(cls, name: str) -> Unresolved | None:
        return cls.__members__.get(name)

    @classmethod
    def from_text(cls, text: str) -> Unresolved:
        """The member an older recording's free text stood for. Some texts carried a detail
        (the ELF error's type, the perf map owner's uid, its size cap) and are matched by
        their fixed start; anything else is UNKNOWN."""
        member = _BY_TEXT.get(text)
        if member is not None:
            return member
        for prefix, member in _BY_PREFIX:
            if text.startswith(prefix):
                return member
        return cls.UNKNOWN


_BY_TEXT = {member.text: member for member in Unresolved}
_BY_PREFIX = (
    ("unreadable ELF (", Unresolved.UNREADABLE_ELF),
    ("perf map owned by uid ", Unresolved.PERF_MAP_FOREIGN_OWNER),
    ("perf map larger than ", Unresolved.PERF_MAP_TOO_LARGE),
)

# The remedies the word matching gave each text, kept as they were.
_REMEDIES: dict[Unresolved, str] = {
    Unresolved.STRIPPED: _DEBUG_SYMBOLS,
    Unresolved.NO_COVERING_SYMBOL: _DEBUG_SYMBOLS,
    Unresolved.JIT: JIT_REMEDY,
    Unresolved.GONE: "the process exited before its symbols were read; profile it while it runs",
    Unresolved.NOT_MAPPED: _FRAME_POINTERS,
    Unresolved.UNREADABLE: _REPLACED,
    Unresolved.UNREADABLE_ELF: _REPLACED,
    Unresolved.MAPS_DENIED: _MAPS_AS_ROOT,
    Unresolved.ROOT_DENIED: _MAPS_AS_ROOT,
    Unresolved.PERF_MAP_SYMLINK: JIT_REMEDY,
    Unresolved.PERF_MAP_NOT_REGULAR: JIT_REMEDY,
    Unresolved.PERF_MAP_FOREIGN_OWNER: JIT_REMEDY,
    Unresolved.PERF_MAP_TOO_LARGE: JIT_REMEDY,
    Unresolved.PYTHON_UNSUPPORTED: (
        "perftop walks CPython 3.11 to 3.13 frames; for this one use py-spy, or --no-python"
    ),
    Unresolved.KPTR: (
        "kernel addresses are hidden: run as root or set sysctl kernel.kptr_restrict=0"
    ),
    Unresolved.NO_KERNEL_SYMBOL: (
        "a kernel module without symbols or BPF code (sysctl net.core.bpf_jit_kallsyms=1)"
    ),
}
