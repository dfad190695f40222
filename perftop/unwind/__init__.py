"""User-space half of `.eh_frame` unwinding: CFI decoding, compact tables, a reference walker.

Debian's binaries keep no frame pointers, so `bpf_get_stackid` breaks their stacks. This package
turns a binary's call frame information into a flat sorted table of fixed-size rows that a BPF
array can hold, caches it by build id, and specifies in Python how the BPF program walks a stack
with it. It imports nothing else from perftop.

What the BPF integration calls:
- `cache.load_unwind_info(path, cache_root=None) -> UnwindInfo`: `.table.packed` is the rows in
  `table.ROW_FORMAT` (16 bytes each, layout in table.py), ready for one BPF array update;
  `.functions.function_start(pc)` names an address in a stripped binary by its FDE's start.
- `walk.process_table_set(pid, table_for, open_image)`: each executable mapping (and the vDSO)
  with its table and load bias, from `/proc/PID/maps`.
- `walk.walk_stack(tables, ip, sp, bp, read_u64)`: the walk the BPF program must reproduce.

Modules, bottom up: elf (sections, segments, build id), eh_frame (CIEs and FDEs), cfi (DW_CFA
programs into rows), table (rows reduced to rsp/rbp/plt/signal/end/undefined rules), functions,
cache, walk.
"""
