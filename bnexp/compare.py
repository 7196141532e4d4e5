"""Run folders -> one DataFrame of runs -> one row per group of runs that differ only by seed.

Statistics are over seeds: mean, sample std, min, max and a 95% Student-t
confidence interval of the mean. Only completed runs enter them; diverged,
failed, interrupted and running runs are counted in their own columns. With a
baseline, each group is compared with the baseline group that matches it in
every other key: a paired t-test over the seeds both ran (the sweep's paired
design), or Welch's t-test where fewer than two seeds are shared.

No TensorFlow here: compare must answer in a blink over a thousand runs.
"""

from __future__ import annotations

import difflib
import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bnexp import runs
from bnexp.errors import BadInput

METRICS = runs.METRIC_COLUMNS[1:]
COUNT_COLUMNS = ["n", "completed", "diverged", "failed", "interrupted", "running"]
STAT_COLUMNS = ["metric", "at", "n_used", "mean", "std", "min", "max", "ci95_low", "ci95_high"]
BASELINE_COLUMNS = ["baseline", "test", "n_pairs", "delta", "delta_ci95_low", "delta_ci95_high",
                    "p_value"]


@dataclass
class Runs:
    """Every run found under a folder: one row each, config keys as dotted columns."""

    table: pd.DataFrame
    config_keys: list[str]
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reading


def load(runs_dir: Path) -> Runs:
    """Read every run folder beneath runs_dir; broken or foreign folders become warnings."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise BadInput(f"{runs_dir}: RUNS_DIR: no such folder")
    rows, warnings = [], []
    run_dirs = sorted(p.parent for p in runs_dir.rglob("summary.json"))
    for folder in run_dirs:
        try:
            rows.append(_read_run(folder))
        except ValueError as e:
            warnings.append(f"skipped {folder}: {e}")
            continue
        if runs.torn_metrics(folder):
            warnings.append(f"{folder}: metrics.csv ends in a torn line (a kill mid-write); "
                            "that line is ignored")
    warnings += _foreign_folders(runs_dir, set(run_dirs))
    rows, superseded = _latest_per_config(rows)
    if superseded:
        warnings.append(f"ignored {superseded} earlier attempt(s) of configs that ran again")
    table = pd.DataFrame(rows)
    keys = sorted({k for row in rows for k in row if k.startswith("cfg:")})
    table = table.rename(columns={k: k[4:] for k in keys})
    return Runs(table, [k[4:] for k in keys], warnings)


def _read_run(folder: Path) -> dict:
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"unreadable summary.json ({type(e).__name__})") from None
    if not isinstance(summary, dict) or "status" not in summary:
        raise ValueError("summary.json is not a bnexp summary")
    config = summary.get("config")
    if not isinstance(config, dict):
        config = _read_config_yaml(folder)
    row = {
        "run_id": folder.name, "path": str(folder), "status": runs.effective_status(summary),
        "seed": config.get("seed", summary.get("seed")), "config_hash": summary.get("config_hash"),
        "epochs_done": summary.get("epochs_done", 0), "started": summary.get("started") or "",
    }
    for key, value in _flatten(config).items():
        if key != "seed":
            row[f"cfg:{key}"] = value
    for at in ("final", "best"):
        values = summary.get(at) or {}
        for metric in METRICS:
            value = values.get(metric)
            row[f"{at}_{metric}"] = float(value) if isinstance(value, int | float) else math.nan
    return row


def _read_config_yaml(folder: Path) -> dict:
    import yaml

    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raise ValueError("no readable config in summary.json or config.yaml") from None
    if not isinstance(config, dict):
        raise ValueError("config.yaml is not a mapping")
    return config


def _flatten(config: dict, prefix: str = "") -> dict:
    """{"model": {"bn": {"placement": "after"}}} -> {"model.bn.placement": "after"}."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = format_value(value)
    return out


def format_value(value):
    """Config values as comparable, printable scalars: lists become "[300, 100]"."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return value


def _foreign_folders(runs_dir: Path, run_dirs: set[Path]) -> list[str]:
    """One warning per folder holding files that is neither a run folder nor above one."""
    above = {parent for d in run_dirs for parent in d.parents}
    warnings = []
    for folder in sorted(p for p in runs_dir.rglob("*") if p.is_dir()):
        if folder in run_dirs or folder in above or any(p in run_dirs for p in folder.parents):
            continue
        if any(part.startswith(".") for part in folder.relative_to(runs_dir).parts):
            continue
        # hidden files are temp files mid-rename (the first summary.json of a new run)
        files = {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
        if files & {"config.yaml", "metrics.csv"}:
            warnings.append(f"skipped {folder}: a partial run folder (no summary.json)")
        elif files:
            warnings.append(f"skipped {folder}: not a bnexp run folder")
    return warnings


def _latest_per_config(rows: list[dict]) -> tuple[list[dict], int]:
    """One run per config hash (config and seed): a finished one first, then the latest."""
    best: dict = {}
    for row in rows:
        key = row["config_hash"] or row["path"]
        rank = (row["status"] in runs.FINISHED, row["started"])
        if key not in best or rank > best[key][0]:
            best[key] = (rank, row)
    kept = [row for _, row in best.values()]
    return sorted(kept, key=lambda r: r["path"]), len(rows) - len(kept)


# ---------------------------------------------------------------- grouping


def differing_keys(found: Runs) -> list[str]:
    """Config keys (seed aside) whose values differ between runs: what a group is.

    A key missing from some runs' config.yaml (a key newer than the bnexp that ran them)
    differs only if the runs that have it disagree."""
    table = found.table
    return [k for k in found.config_keys if table[k].dropna().astype(str).nunique() > 1]


def group_keys(found: Runs, by: list[str] | None) -> list[str]:
    """--by keys, checked; else the differing keys; else the name."""
    if by:
        for key in by:
            if key not in found.config_keys:
                close = difflib.get_close_matches(key, found.config_keys, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise BadInput(f"--by {key}: not a config key of these runs{hint}")
        return list(by)
    return differing_keys(found) or ["name"]


def metric_values(table: pd.DataFrame, metric: str, at: str) -> pd.Series:
    check_metric(metric, at)
    return table[f"{at}_{metric}"]


def check_metric(metric: str, at: str) -> None:
    if metric not in METRICS:
        close = difflib.get_close_matches(metric, METRICS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BadInput(f"--metric {metric}: expected one of {', '.join(METRICS)}{hint}")
    if at not in ("final", "best"):
        raise BadInput(f"--at {at}: expected final or best")


def summarize(values) -> dict:
    """n_used, mean, std, min, max and the 95% Student-t interval of the mean."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    n = len(x)
    out = {"n_used": n, "mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan,
           "ci95_low": math.nan, "ci95_high": math.nan}
    if n == 0:
        return out
    out.update(mean=float(x.mean()), min=float(x.min()), max=float(x.max()))
    if n >= 2:
        std = float(x.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        out.update(std=std, ci95_low=out["mean"] - half, ci95_high=out["mean"] + half)
    return out


def difference(x: dict, b: dict) -> dict:
    """Group minus baseline. x, b: seed -> value. Paired over shared seeds, else Welch.

    Identical differences (std 0) leave the p-value undefined: NaN, without scipy's warning.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _difference(x, b)


def _difference(x: dict, b: dict) -> dict:
    shared = sorted(set(x) & set(b))
    out = {"test": "", "n_pairs": len(shared), "delta": math.nan, "delta_ci95_low": math.nan,
           "delta_ci95_high": math.nan, "p_value": math.nan}
    if len(shared) >= 2:
        d = np.array([x[s] - b[s] for s in shared])
        mean, half = float(d.mean()), _half_width(d.std(ddof=1), len(d), len(d) - 1)
        p = float(stats.ttest_rel([x[s] for s in shared], [b[s] for s in shared]).pvalue)
        out.update(test="paired", delta=mean, p_value=p)
    elif len(x) >= 2 and len(b) >= 2:
        xv, bv = np.array(list(x.values())), np.array(list(b.values()))
        vx, vb = xv.var(ddof=1) / len(xv), bv.var(ddof=1) / len(bv)
        se = math.sqrt(vx + vb)
        df = (vx + vb) ** 2 / (vx**2 / (len(xv) - 1) + vb**2 / (len(bv) - 1)) if se else 1.0
        mean, half = float(xv.mean() - bv.mean()), float(stats.t.ppf(0.975, df)) * se
        p = float(stats.ttest_ind(xv, bv, equal_var=False).pvalue)
        out.update(test="welch", delta=mean, p_value=p)
    else:
        return out
    out.update(delta_ci95_low=mean - half, delta_ci95_high=mean + half)
    return out


def _half_width(std: float, n: int, df: float) -> float:
    return float(stats.t.ppf(0.975, df)) * float(std) / math.sqrt(n)


def table(found: Runs, metric: str = "test_acc", at: str = "final", by: list[str] | None = None,
          baseline: str | None = None) -> pd.DataFrame:
    """One row per group of runs that differ only by seed, with counts and statistics."""
    check_metric(metric, at)
    if found.table.empty:
        return pd.DataFrame(columns=["name", *COUNT_COLUMNS, *STAT_COLUMNS])
    keys = group_keys(found, by)
    runs_table = found.table.assign(_value=metric_values(found.table, metric, at))
    rows = []
    for values, group in runs_table.groupby(keys, sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        status = group["status"].value_counts()
        row = dict(zip(keys, values, strict=True))
        row["n"] = len(group)
        for name in COUNT_COLUMNS[1:]:
            row[name] = int(status.get(name, 0))
        done = group[group["status"] == "completed"]
        row.update(metric=metric, at=at, **summarize(done["_value"]))
        row["_seeds"] = {s: v for s, v in zip(done["seed"], done["_value"], strict=True)
                         if np.isfinite(v)}
        rows.append(row)
    out = pd.DataFrame(rows)
    if baseline:
        out = _add_baseline(out, keys, baseline)
    return out.drop(columns="_seeds").reset_index(drop=True)


def _add_baseline(out: pd.DataFrame, keys: list[str], baseline: str) -> pd.DataFrame:
    key, sep, raw = baseline.partition("=")
    if not sep:
        raise BadInput(f"--baseline {baseline!r}: expected KEY=VALUE, e.g. model.bn.placement=none")
    if key not in keys:
        raise BadInput(f"--baseline {key}: not one of the grouping keys ({', '.join(keys)})")
    wanted = _parse_value(raw)
    others = [k for k in keys if k != key]
    if not (out[key].astype(str) == str(wanted)).any():
        seen = ", ".join(sorted(out[key].astype(str).unique()))
        raise BadInput(f"--baseline {baseline}: no group has {key}={raw} (values: {seen})")
    candidates = out[out[key].astype(str) == str(wanted)]
    label = f"{key}={raw}"
    extra = []
    for _, row in out.iterrows():
        match = candidates
        if len(candidates) > 1:  # one baseline per setting of the other keys
            for other in others:
                match = match[match[other].astype(str) == str(row[other])]
        if match.empty:
            extra.append({"baseline": "", **difference({}, {})})
        elif match.index[0] == row.name:
            extra.append({"baseline": "(baseline)", **difference({}, {})})
        else:
            extra.append({"baseline": label, **difference(row["_seeds"], match.iloc[0]["_seeds"])})
    return pd.concat([out, pd.DataFrame(extra, index=out.index)[BASELINE_COLUMNS]], axis=1)


def _parse_value(text: str):
    from bnexp.config import parse_yaml

    return format_value(parse_yaml(text))


def run_rows(found: Runs, metric: str = "test_acc", at: str = "final",
             by: list[str] | None = None) -> pd.DataFrame:
    """--runs: one row per run: the grouping keys, seed, status, the metric, the folder."""
    check_metric(metric, at)
    if found.table.empty:
        return pd.DataFrame(columns=["seed", "status", metric, "run_id"])
    keys = group_keys(found, by)
    t = found.table
    out = t[keys + ["seed", "status", "epochs_done"]].copy()
    out[metric] = metric_values(t, metric, at)
    out["run_id"] = t["run_id"]
    return out.sort_values(keys + ["seed"], kind="stable").reset_index(drop=True)


def curves(found: Runs, metric: str = "test_acc", by: list[str] | None = None) -> dict:
    """Per group label, a DataFrame of epoch, mean, ci95_low, ci95_high, n (completed runs)."""
    check_metric(metric, "final")
    return _series(found, by, lambda path: pd.DataFrame(runs.read_metrics(path)), "epoch",
                   metric)


def step_curves(found: Runs, metric: str = "test_acc", by: list[str] | None = None) -> dict:
    """As `curves`, over steps, from the runs' steps.csv (diagnostics.step_metrics)."""
    return _series(found, by, lambda path: read_diagnostic(path, "steps.csv"), "step", metric)


def activation_bands(found: Runs, layer: str | None = None, unit: str = "0",
                     by: list[str] | None = None) -> tuple[str | None, dict]:
    """(layer, {group label: DataFrame step, p15, p50, p85}) from activations.csv: one
    unit of one layer (default: the last layer, "a typical sigmoid of the last hidden
    layer") in each group's run with the lowest seed, as Ioffe & Szegedy's Fig. 1(b, c)."""
    out = {}
    for label, group in _groups(found, by):
        frame = read_diagnostic(Path(group.sort_values("seed")["path"].iloc[0]),
                                "activations.csv")
        if frame.empty:
            continue
        layer = layer or frame["layer"].iloc[-1]
        rows = frame[(frame["layer"] == layer) & (frame["unit"].astype(str) == unit)]
        if not rows.empty:
            out[label] = rows[["step", "p15", "p50", "p85"]].reset_index(drop=True)
    return layer, out


def drift_curves(found: Runs, by: list[str] | None = None) -> dict:
    """Per group label, drift.csv's mean_error and variance_error per epoch and layer,
    averaged over the group's runs."""
    out = {}
    for label, group in _groups(found, by):
        frames = [read_diagnostic(Path(p), "drift.csv") for p in group["path"]]
        frames = [f for f in frames if not f.empty]
        if frames:
            both = pd.concat(frames)
            out[label] = both.groupby(["layer", "epoch"], sort=False, as_index=False)[
                ["mean_error", "variance_error"]].mean()
    return out


def long_table(series: dict) -> pd.DataFrame:
    """{group label: frame} as one frame with a `group` column first."""
    frames = [frame.assign(group=label) for label, frame in series.items()]
    table = pd.concat(frames, ignore_index=True)
    return table[["group", *[c for c in table.columns if c != "group"]]]


def read_diagnostic(path: Path, name: str) -> pd.DataFrame:
    """A diagnostics CSV of a run folder (empty if absent); a torn last line is dropped."""
    file = path / name
    if not file.exists():
        return pd.DataFrame()
    text = file.read_text(encoding="utf-8")
    text = text[: text.rfind("\n") + 1]
    return pd.read_csv(io.StringIO(text), dtype={"unit": str}) if text else pd.DataFrame()


def _groups(found: Runs, by: list[str] | None):
    """(label, completed runs) per group, in the order groups first appear."""
    if found.table.empty:
        return
    keys = group_keys(found, by)
    done = found.table[found.table["status"] == "completed"]
    for values, group in done.groupby(keys, sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        yield ", ".join(f"{k.rsplit('.', 1)[-1]}={v}"
                        for k, v in zip(keys, values, strict=True)), group


def _series(found: Runs, by, read, x: str, metric: str) -> dict:
    """Per group, `metric` summarized over the runs at each value of x (epoch, step)."""
    out = {}
    for label, group in _groups(found, by):
        per_x: dict[int, list[float]] = {}
        for path in group["path"]:
            frame = read(Path(path))
            if metric not in frame:
                continue
            for at, value in zip(frame[x], frame[metric], strict=True):
                if np.isfinite(value):
                    per_x.setdefault(int(at), []).append(float(value))
        frame = pd.DataFrame([{x: at, **summarize(v)} for at, v in sorted(per_x.items())])
        if not frame.empty:
            out[label] = frame
    return out
