"""Snapshot + the user's choices -> what the screen shows, as plain, already printable strings.

Pure functions, tested without a terminal; this package never imports Textual (a test checks).
Every string that came from another process leaves here through `printable`; the UI adds style.
"""

from perftop.viewmodel.controls import (
    DEFAULT_DECAY_KEEP,
    FREQUENCY_STEPS,
    Accumulated,
    DecayingAccumulation,
    ViewOptions,
    next_frequency,
)
from perftop.viewmodel.header import (
    Piece,
    PieceKind,
    cost_pieces,
    cpu_sparkline,
    filter_pieces,
    status_pieces,
)
from perftop.viewmodel.stacks import (
    JIT_REMEDY,
    Explanation,
    StackNode,
    explain_unresolved,
    stack_tree,
)
from perftop.viewmodel.tables import (
    DEFAULT_FUNCTION_SORT,
    DEFAULT_PROCESS_SORT,
    FUNCTION_COLUMNS,
    PROCESS_COLUMNS,
    Column,
    TableRow,
    column_by_id,
    cycle_sort,
    filtered_snapshot,
    function_key_from_row,
    function_row_key,
    function_rows,
    human_bytes,
    process_row_key,
    process_rows,
    sorted_items,
    with_quiet_processes,
)

__all__ = [
    "DEFAULT_DECAY_KEEP",
    "DEFAULT_FUNCTION_SORT",
    "DEFAULT_PROCESS_SORT",
    "FREQUENCY_STEPS",
    "FUNCTION_COLUMNS",
    "JIT_REMEDY",
    "PROCESS_COLUMNS",
    "Accumulated",
    "Column",
    "DecayingAccumulation",
    "Explanation",
    "Piece",
    "PieceKind",
    "StackNode",
    "TableRow",
    "ViewOptions",
    "column_by_id",
    "cost_pieces",
    "cpu_sparkline",
    "cycle_sort",
    "explain_unresolved",
    "filter_pieces",
    "filtered_snapshot",
    "function_key_from_row",
    "function_row_key",
    "function_rows",
    "human_bytes",
    "next_frequency",
    "process_row_key",
    "process_rows",
    "sorted_items",
    "stack_tree",
    "status_pieces",
    "with_quiet_processes",
]
