"""`bnexp doctor`'s answer: one block per finding as text, or a JSON list of objects.

Plain text on stdout (no rich markup: the evidence holds brackets and the lines are meant
to be read in a log as well as on a terminal).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from bnexp.analysis.doctor import SEVERITIES, Finding
from bnexp.errors import escaped

WIDTH = 100


def print_json(findings: list[Finding]) -> None:
    """A JSON list of {run, id, severity, evidence, advice}; [] when nothing was found."""
    print(json.dumps([f.to_dict() for f in findings], indent=2))


def print_text(each: dict[str, list[Finding]]) -> None:
    """Per run, one block per finding (severity, id, run folder name, evidence, advice),
    or one line saying no problems were found; a count at the end for several runs."""
    for run, findings in each.items():
        name = escaped(Path(run).name)  # a folder name's escapes never reach the terminal
        if not findings:
            print(f"{name}: no problems found")
            continue
        for finding in findings:
            print(text_block(finding))
            print()
    if len(each) > 1:
        print(count_line(each))


def text_block(finding: Finding) -> str:
    lines = [f"{finding.severity.upper()} {finding.id}: {escaped(Path(finding.run).name)}"]
    for label, text in (("evidence", finding.evidence), ("advice", finding.advice)):
        lines.append(textwrap.fill(text, WIDTH, initial_indent=f"  {label}: ",
                                   subsequent_indent="    ", break_on_hyphens=False))
    return "\n".join(lines)


def count_line(each: dict[str, list[Finding]]) -> str:
    """'3 runs: 1 error, 2 warnings, 0 info; 1 run without problems'."""
    found = [f for findings in each.values() for f in findings]
    counts = {s: sum(f.severity == s for f in found) for s in SEVERITIES}
    parts = [f"{counts['error']} error{'s' * (counts['error'] != 1)}",
             f"{counts['warning']} warning{'s' * (counts['warning'] != 1)}",
             f"{counts['info']} info"]
    clean = sum(not findings for findings in each.values())
    return (f"{len(each)} runs: {', '.join(parts)}; {clean} run{'s' * (clean != 1)} "
            "with no findings")
