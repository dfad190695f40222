"""An interval + the user's choices -> what the screen shows, as plain, already printable strings.

Pure functions, tested without a terminal; this package never imports Textual (a test checks).
Every string that came from another process leaves here through `printable`; the UI adds style.
"""

from perftop.profile.accumulate import DEFAULT_DECAY_KEEP
from perftop.profile.view import build_view
from perftop.viewmodel.controls import (
    FREQUENCY_STEPS,
    ViewOptions,
    next_frequency,
)
from perftop.viewmodel.header import (
    Piece,
    PieceKind,
    cost_pieces,
    cpu_sparkline,
    filter_pieces,
    fitted_cost_pieces,
    status_pieces,
)
from perftop.viewmodel.stacks import (
    JIT_REMEDY,
    Explanation,
    StackNode,
    cgroup_stack_tree,
    explain_unresolved,
    stack_tree,
)
from perftop.viewmodel.tables import (
    CGROUP_COLUMNS,
    DEFAULT_CGROUP_SORT,
    DEFAULT_FUNCTION_SORT,
    DEFAULT_PROCESS_SORT,
    FUNCTION_COLUMNS,
    PROCESS_COLUMNS,
    Column,
    TableRow,
    cgroup_name,
    cgroup_rows,
    column_by_id,
    cycle_sort,
    function_key_of,
    function_kind,
    function_rows,
    human_bytes,
    module_rows,
    module_text,
    process_rows,
    sorted_items,
    with_quiet_processes,
)

__all__ = [
    "CGROUP_COLUMNS",
    "DEFAULT_CGROUP_SORT",
    "DEFAULT_DECAY_KEEP",
    "DEFAULT_FUNCTION_SORT",
    "DEFAULT_PROCESS_SORT",
    "FREQUENCY_STEPS",
    "FUNCTION_COLUMNS",
    "JIT_REMEDY",
    "PROCESS_COLUMNS",
    "Column",
    "Explanation",
    "Piece",
    "PieceKind",
    "StackNode",
    "TableRow",
    "ViewOptions",
    "build_view",
    "cgroup_name",
    "cgroup_rows",
    "cgroup_stack_tree",
    "column_by_id",
    "cost_pieces",
    "cpu_sparkline",
    "cycle_sort",
    "explain_unresolved",
    "filter_pieces",
    "fitted_cost_pieces",
    "function_key_of",
    "function_kind",
    "function_rows",
    "human_bytes",
    "module_rows",
    "module_text",
    "next_frequency",
    "process_rows",
    "sorted_items",
    "stack_tree",
    "status_pieces",
    "with_quiet_processes",
]
