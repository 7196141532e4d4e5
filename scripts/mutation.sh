#!/usr/bin/env bash
# Mutation testing of the TensorFlow-free core: the modules and tests named under
# [tool.mutmut] in pyproject.toml. Each mutant is a small change to the code (a flipped
# comparison, a changed constant, a dropped call); the tests should fail on it
# ("killed"). Policy and score: docs/mutation.md.
#
#   bash scripts/mutation.sh            # every mutant (about 32 minutes on 2 cores);
#                                       # writes docs/mutation-survivors.md
#   bash scripts/mutation.sh --smoke    # CI: the whole test selection under mutmut, then
#                                       # the first mutant of each function of one module
#   .venv/bin/mutmut show NAME          # the diff of one mutant, after a run
#
# The last line reads: mutation score: K/N killed (P%). Timeouts count as killed (the
# tests noticed); mutants no test reaches count as survivors.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
smoke=""
case "${1:-}" in
  "") ;;
  --smoke) smoke=1 ;;
  *) echo "usage: bash scripts/mutation.sh [--smoke]" >&2; exit 2 ;;
esac
log="${TMPDIR:-/tmp}/bnexp-mutation.log"
rm -rf mutants
# --smoke: mutmut's stats run still runs every selected test under its trampolines (where
# a test too deep for them broke the full run), then only these mutants
names=()
[ -n "$smoke" ] && names=("bnexp.runs.plan.*__mutmut_1")
echo "mutmut run ${names[*]:-} (log: $log) ..."
"$PY" -m mutmut run --max-children "${MUTATION_JOBS:-2}" "${names[@]}" >"$log" 2>&1 || {
    tail -n 30 "$log"; exit 1; }
"$PY" -m mutmut export-cicd-stats >/dev/null
"$PY" -m mutmut results >"mutants/survivors.txt" 2>&1 || true
SMOKE="$smoke" "$PY" - <<'PY'
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
killed = stats["killed"] + stats["timeout"]
total = killed + stats["survived"] + stats["no_tests"] + stats.get("suspicious", 0)
names = re.findall(r"^\s*(\S+__mutmut_\d+): (survived|no tests|suspicious)",
                   Path("mutants/survivors.txt").read_text(), flags=re.M)
if not os.environ["SMOKE"]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    rows = []
    for name, status in names:
        shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name],
                               capture_output=True, text=True).stdout
        changed = [line[1:].strip() for line in shown.splitlines()
                   if line.startswith("+") and not line.startswith("+++")]
        change = (changed[0] if changed else "").replace("|", "\\|")[:120]
        rows.append(f"| `{name}` | {status} | `{change}` |" if change else
                    f"| `{name}` | {status} | |")
    Path("docs/mutation-survivors.md").write_text(
        "# Surviving mutants (generated)\n\n"
        "Written by `bash scripts/mutation.sh`; do not edit by hand. The policy and what\n"
        "the classes of survivors mean: [Mutation testing](mutation.md).\n\n"
        f"Run of {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores ({cpu}): "
        f"**{killed}/{total} killed ({100 * killed / total:.1f}%)**, "
        f"{len(names)} survivors.\n\n"
        "| mutant | status | the mutated line |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    print(f"survivors ({len(names)}): docs/mutation-survivors.md")
print(f"mutation score: {killed}/{total} killed ({100 * killed / total:.1f}%)")
PY
