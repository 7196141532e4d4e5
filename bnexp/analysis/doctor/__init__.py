"""`bnexp doctor`: the classic batch-normalization problems a run's files show, each with
the run's own numbers as evidence and the fix. No TensorFlow.

`diagnose(folder)` checks one run folder, `diagnose_each(path)` / `diagnose_all(path)` a
run folder or every run beneath a folder (of several attempts of one config, the one
that counts). What is read: doctor.run; the checks and their thresholds: doctor.checks.
"""

from __future__ import annotations

from pathlib import Path

from bnexp import runs
from bnexp.analysis.doctor.checks import BN_CHECKS, CHECKS, IDS, has_bn
from bnexp.analysis.doctor.run import SEVERITIES, CheckedRun, Finding
from bnexp.errors import BadInput

__all__ = ["IDS", "Finding", "diagnose", "diagnose_all", "diagnose_each"]


def diagnose(folder: Path, warnings: list[str] | None = None) -> list[Finding]:
    """Every finding of one run folder; BadInput if it is not a readable run folder.
    `warnings` (where given) gets a line per value read as absent."""
    folder = Path(folder)
    try:
        record = runs.read_record(folder, with_config=True, warnings=warnings)
    except ValueError as e:
        raise BadInput(f"{folder}: not a readable run folder: {e}") from None
    return diagnose_record(record)


def diagnose_record(record: runs.RunRecord) -> list[Finding]:
    """Every finding of one run record, most serious first."""
    rows = runs.read_metrics(record.path)
    run = CheckedRun(record.path, record.summary, record.status, record.config or {}, rows)
    checks = CHECKS if has_bn(run) else [c for c in CHECKS if c not in BN_CHECKS]
    findings = [finding for check in checks for finding in check(run)]
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def diagnose_each(path: Path) -> tuple[dict[str, list[Finding]], list[str]]:
    """run folder -> its findings, for a run folder or every run beneath a folder (of
    several attempts of one config, the one that counts), and the warnings of the scan."""
    path = Path(path)
    if not path.is_dir():
        raise BadInput(f"{path}: no such folder")
    if (path / "summary.json").is_file():
        warnings: list[str] = []
        return {str(path): diagnose(path, warnings)}, warnings
    kept, warnings = runs.scan_latest(path, with_config=True)
    skipped = [w for w in warnings if w.startswith("skipped ")]
    if not kept and skipped:
        raise BadInput(f"{path}: no readable run folder here: {len(skipped)} folder(s) "
                       f"skipped, the first: {skipped[0].removeprefix('skipped ')}")
    if not kept:
        raise BadInput(f"{path}: no run folder here (no summary.json beneath it)")
    return {str(record.path): diagnose_record(record) for record in kept}, warnings


def diagnose_all(path: Path) -> tuple[list[Finding], list[str]]:
    """The findings of a run folder or of every run beneath a folder, and the warnings."""
    each, warnings = diagnose_each(path)
    return [finding for findings in each.values() for finding in findings], warnings
