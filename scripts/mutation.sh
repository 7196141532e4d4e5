#!/usr/bin/env bash
# Mutation testing of the TensorFlow-free core: the modules and tests named under
# [tool.mutmut] in pyproject.toml (config schema and loading, the run-folder reader,
# compare's statistics, doctor's rules). Each mutant is a small change to the code
# (a flipped comparison, a changed constant, a dropped call); the tests should fail
# on it ("killed"). Survivors are listed; docs/development.md says what they mean.
#
#   bash scripts/mutation.sh            # about 25 minutes on 2 cores
#   .venv/bin/mutmut show NAME          # the diff of one survivor
#
# The last line reads: mutation score: K/N killed (P%). Timeouts count as killed (the
# tests noticed); mutants no test reaches count as survivors.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
log="${TMPDIR:-/tmp}/bnexp-mutation.log"
rm -rf mutants
echo "mutmut run (log: $log) ..."
"$PY" -m mutmut run --max-children "${MUTATION_JOBS:-2}" >"$log" 2>&1 || {
    tail -n 30 "$log"; exit 1; }
"$PY" -m mutmut export-cicd-stats >/dev/null
"$PY" -m mutmut results >"mutants/survivors.txt" 2>&1 || true
"$PY" - <<'PY'
import json
from pathlib import Path

stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
survivors = Path("mutants/survivors.txt").read_text().split("\n")
print(f"survivors ({stats['survived'] + stats['no_tests']}): mutants/survivors.txt")
killed = stats["killed"] + stats["timeout"]
total = killed + stats["survived"] + stats["no_tests"] + stats.get("suspicious", 0)
print(f"mutation score: {killed}/{total} killed ({100 * killed / total:.1f}%)")
PY
