"""Run folders: what a run is (record), writing one (files), reading them back (reader).

No TensorFlow: compare and plot read run folders through this package.
"""

from bnexp.runs.files import (
    RunFolder,
    append_csv,
    complete_lines,
    create,
    cut_csv,
    ensure_writable,
    move_into,
    repair_metrics,
    replace_atomically,
    write_text_atomic,
)
from bnexp.runs.reader import (
    find_finished,
    latest,
    latest_attempts,
    read_metrics,
    read_record,
    read_summary,
    read_table,
    scan,
    scan_latest,
    torn_metrics,
)
from bnexp.runs.record import (
    EPOCH_COLUMNS,
    FINISHED,
    LOWER_IS_BETTER,
    METRIC_COLUMNS,
    QUALITY_COLUMNS,
    Outcome,
    RunRecord,
    best_of,
    effective_status,
    final_of,
)

__all__ = [
    "EPOCH_COLUMNS", "FINISHED", "LOWER_IS_BETTER", "METRIC_COLUMNS", "QUALITY_COLUMNS",
    "Outcome", "RunFolder", "RunRecord", "append_csv", "best_of", "complete_lines", "create",
    "cut_csv", "effective_status", "ensure_writable", "final_of", "find_finished", "latest",
    "latest_attempts", "move_into", "read_metrics", "read_record", "read_summary",
    "read_table", "repair_metrics", "replace_atomically", "scan", "scan_latest", "torn_metrics",
    "write_text_atomic",
]
