"""Run folders: what a run is (record), writing one (files; atomic: any file whole or not
at all), reading them back (reader: summary.json and config.yaml; csvread: the CSV
files; search: the run folders beneath a folder, and the attempt that counts), a run's
checkpoint (checkpoint), and what to do with the folders already there (plan).

No TensorFlow: compare and plot read run folders through this package.
"""

from bnexp.runs.atomic import (
    check_writable_file,
    make_folder,
    replace_atomically,
    stage,
    write_files,
    write_folder,
    write_text_atomic,
)
from bnexp.runs.csvread import read_csv, read_metrics, read_table, torn_metrics
from bnexp.runs.files import (
    RunFolder,
    append_csv,
    complete_lines,
    create,
    cut_csv,
    ensure_writable,
    move_into,
    record_death,
    repair_metrics,
)
from bnexp.runs.reader import plain_text, read_record, read_summary
from bnexp.runs.record import (
    EPOCH_COLUMNS,
    FINISHED,
    LOWER_IS_BETTER,
    QUALITY_COLUMNS,
    SCHEMA,
    SELECTORS,
    Outcome,
    RunRecord,
    best_of,
    bn_gap,
    effective_status,
    final_of,
    process_started,
    selected_row,
    selector_for,
)
from bnexp.runs.search import find_finished, latest, latest_attempts, scan, scan_latest

__all__ = [
    "EPOCH_COLUMNS",
    "FINISHED",
    "LOWER_IS_BETTER",
    "Outcome",
    "QUALITY_COLUMNS",
    "RunFolder",
    "RunRecord",
    "SCHEMA",
    "SELECTORS",
    "append_csv",
    "best_of",
    "bn_gap",
    "check_writable_file",
    "complete_lines",
    "create",
    "cut_csv",
    "effective_status",
    "ensure_writable",
    "make_folder",
    "final_of",
    "find_finished",
    "latest",
    "latest_attempts",
    "move_into",
    "plain_text",
    "process_started",
    "read_csv",
    "record_death",
    "read_metrics",
    "read_record",
    "read_summary",
    "read_table",
    "repair_metrics",
    "replace_atomically",
    "stage",
    "scan",
    "scan_latest",
    "selected_row",
    "selector_for",
    "torn_metrics",
    "write_files",
    "write_folder",
    "write_text_atomic",
]
