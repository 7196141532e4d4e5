"""The studies' tables of what the probes measured (docs/results.md), beside compare's:
one number per run from its probe file, then per group its mean and 95% CI over seeds
(bnexp.analysis.stats.summarize, compare's own statistics). No TensorFlow.

    python scripts/probe_tables.py STUDY     -> docs/results/STUDY/<table>.{csv,md}

grad_explosion: log10 of the first kernel's gradient norm over the last's at step 0, and
    the growth per layer that makes it; dropout: the variance shift, drift.csv's
    variance_error (RMS over units) at the last epoch, averaged over the BN layers;
    weight_decay: the scale-invariant kernels' mean norm and effective learning rate at
    the last epoch; frankle: the test accuracy at step 0 (the frozen random network);
    noisy_bn: over the predictiveness probes after step 0, the mean range of the loss
    over the step sizes and the largest smoothness (effective beta-smoothness);
    domain_shift: eval.csv's test accuracy per shift and statistics (each run's last row
    of each), and batch and adapt against population, paired by run (the same weights).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

import bnexp
from bnexp import runs
from bnexp.analysis.stats import difference, summarize
from bnexp.runs import evals

ROOT = Path(__file__).resolve().parents[1]


def grad_explosion(path: Path) -> dict:
    frame = runs.read_table(path, "grad_norms.csv")
    kernels = frame[(frame["weight"] == "kernel") & (frame["step"] == frame["step"].min())]
    ratio = kernels["grad_norm"].iloc[0] / kernels["grad_norm"].iloc[-1]
    return {"log10 first/last": math.log10(ratio),
            "growth per layer": ratio ** (1 / (len(kernels) - 1))}


def dropout(path: Path) -> dict:
    frame = runs.read_table(path, "drift.csv")
    last = frame[frame["epoch"] == frame["epoch"].max()]
    return {"variance shift": last["variance_error"].mean(),
            "mean shift": last["mean_error"].mean()}


def weight_decay(path: Path) -> dict:
    frame = runs.read_table(path, "weight_norms.csv")
    invariant = frame[(frame["scale_invariant"] == "True")]
    first = invariant[invariant["epoch"] == 0]
    last = invariant[invariant["epoch"] == invariant["epoch"].max()]
    return {"kernel norm, start": first["norm"].mean(), "kernel norm, end": last["norm"].mean(),
            "effective lr, end": last["effective_lr"].mean()}


def frankle(path: Path) -> dict:
    frame = runs.read_table(path, "steps.csv")
    return {"test acc at step 0": frame.loc[frame["step"] == 0, "test_acc"].iloc[0]}


def noisy_bn(path: Path) -> dict:
    frame = runs.read_table(path, "predictiveness.csv")
    later = frame[frame["step"] > 0].groupby("step")
    return {"loss range": (later["loss_after"].max() - later["loss_after"].min()).mean(),
            "gradient change": later["grad_change"].mean().mean(),
            "max smoothness": later["smoothness"].max().max()}


TABLES = {"grad_explosion": (grad_explosion, ["label", "model.bn.placement"]),
          "dropout": (dropout, ["model.dropout.placement"]),
          "weight_decay": (weight_decay, ["train.l2"]),
          "frankle": (frankle, ["train.trainable"]),
          "noisy_bn": (noisy_bn, ["name"])}


def table(study: str) -> pd.DataFrame:
    measure, keys = TABLES[study]
    found = bnexp.load_runs(ROOT / "runs" / "studies" / study)
    found = found[found["status"] == "completed"]
    per_run = pd.DataFrame([{**{k: row[k] for k in keys}, **measure(Path(row["path"]))}
                            for _, row in found.iterrows()])
    rows = []
    for group, runs_of in per_run.groupby(keys, sort=False):
        group = group if isinstance(group, tuple) else (group,)
        row = dict(zip(keys, group, strict=True))
        for column in per_run.columns.drop(keys):
            s = summarize(runs_of[column].astype(float))
            row.update({f"{column}": s["mean"], f"{column} ci95_low": s["ci95_low"],
                        f"{column} ci95_high": s["ci95_high"]})
        row["n"] = len(runs_of)
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """The frame as a Markdown table, numbers to 4 significant digits."""
    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines) + "\n"


def shift_table() -> pd.DataFrame:
    """domain_shift: per shift, each statistics' mean accuracy [CI] over the runs, and
    batch's and adapt's paired difference to population."""
    found = bnexp.load_runs(ROOT / "runs" / "studies" / "domain_shift")
    values: dict[tuple[str, str], dict] = {}  # (shift, stats) -> {seed: acc}
    for _, run in found[found["status"] == "completed"].iterrows():
        for row in evals.read(Path(run["path"])):
            if row["stats"] != "batch" or row["batch_size"] == run["data.batch_size"]:
                key = (evals.condition(row["data"], row["shift"]), row["stats"])
                values.setdefault(key, {})[int(run["seed"])] = row["acc"]
    rows = []
    for shift in dict.fromkeys(k[0] for k in values):
        row = {"shift": shift}
        for stats in evals.STATS:
            s = summarize(list(values[(shift, stats)].values()))
            row[stats] = f"{s['mean']:.3f} [{s['ci95_low']:.3f}, {s['ci95_high']:.3f}]"
            if stats != "population":
                d = difference(values[(shift, stats)], values[(shift, "population")])
                row[f"{stats} - population"] = (
                    f"{d['delta']:+.3f} [{d['delta_ci95_low']:+.3f}, {d['delta_ci95_high']:+.3f}]"
                    f", p = {d['p_value']:.2g}")
        row["n"] = len(values[(shift, "population")])
        rows.append(row)
    return pd.DataFrame(rows)


def main(study: str) -> None:
    out = ROOT / "docs" / "results" / study
    out.mkdir(parents=True, exist_ok=True)
    frame = shift_table() if study == "domain_shift" else table(study)
    frame.to_csv(out / "probes.csv", index=False, float_format="%.6g")
    (out / "probes.md").write_text(markdown(frame))
    print(out / "probes.md")


if __name__ == "__main__":
    main(sys.argv[1])
