"""User-space half of `.eh_frame` unwinding: CFI decoding, compact tables, a reference walker.

Debian's binaries keep no frame pointers, so `bpf_get_stackid` breaks their stacks. This package
turns a binary's call frame information into a flat sorted table of fixed-size rows (`table.py`)
that a BPF array can hold, caches it by build id (`cache.py`), and specifies in Python how the BPF
program walks a stack with it (`walk.py`). It imports nothing else from perftop.
"""
