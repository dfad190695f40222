"""Run a command with some system calls refused (EPERM) by a seccomp filter, as a container
runtime's default profile refuses bpf(): `python seccomp_exec.py bpf,perf_event_open -- CMD...`.

Standalone (the child runs it before exec'ing perftop), so it imports nothing from perftop.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys

# (audit arch, syscall numbers) per machine, from the kernel's uapi headers.
ARCHES = {
    "x86_64": (0xC000003E, {"bpf": 321, "perf_event_open": 298}),
    "aarch64": (0xC00000B7, {"bpf": 280, "perf_event_open": 241}),
}
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
LOAD_WORD_ABS, JUMP_EQUAL, RETURN = 0x20, 0x15, 0x06
SECCOMP_DATA_NR, SECCOMP_DATA_ARCH = 0, 4


class SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def refuse(names: list[str]) -> None:
    arch, numbers = ARCHES[platform.machine()]
    refused = [numbers[name] for name in names]
    program = [
        SockFilter(LOAD_WORD_ABS, 0, 0, SECCOMP_DATA_ARCH),
        SockFilter(JUMP_EQUAL, 1, 0, arch),
        SockFilter(RETURN, 0, 0, SECCOMP_RET_ALLOW),
        SockFilter(LOAD_WORD_ABS, 0, 0, SECCOMP_DATA_NR),
    ]
    for index, number in enumerate(refused):
        # Jump over the remaining comparisons and the ALLOW to the final ERRNO.
        program.append(SockFilter(JUMP_EQUAL, len(refused) - index, 0, number))
    program.append(SockFilter(RETURN, 0, 0, SECCOMP_RET_ALLOW))
    program.append(SockFilter(RETURN, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM))
    filters = (SockFilter * len(program))(*program)
    fprog = SockFprog(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


if __name__ == "__main__":
    separator = sys.argv.index("--")
    refuse(sys.argv[1].split(","))
    command = sys.argv[separator + 1 :]
    os.execvp(command[0], command)
