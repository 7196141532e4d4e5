"""Run folders into MLflow (`bnexp export mlflow`): each run folder beneath a runs folder
becomes one MLflow run of one experiment: config keys as params, metrics.csv and the
probes' CSVs as metric series, summary fields as tags, the folder's files as artifacts.
The mapping, field by field: docs/mlflow.md.

Exporting again adds nothing twice: a run is found again by its tag RUN_ID_TAG (the
folder's name), and of each metric only the steps past the last one MLflow holds are
sent (MLflow's log_metric appends: the same step sent twice is two points). A run whose
files and status are as the last export left them (tag FINGERPRINT_TAG) is passed over
without a metric history read.

The traps: MLflow is an optional extra, imported only inside the functions here (no
TensorFlow either); MLflow cuts a param value past MAX_PARAM_VAL_LENGTH characters with
no more than a logged warning, so such a value goes as an artifact and the param points
to it; and MLflow retries an unreachable server for minutes, so the first request is made
with retries off and a short timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from bnexp import runs
from bnexp.errors import BadInput
from bnexp.yamltext import flatten, format_value

# tag names in MLflow, "bnexp." and a name (written so here: docs checks read a dotted
# name beginning with bnexp as a module's)
TAG_PREFIX = "bnexp."
RUN_ID_TAG = f"{TAG_PREFIX}run_id"  # the run folder's name: how a run is found again
FINGERPRINT_TAG = f"{TAG_PREFIX}fingerprint"  # status, file sizes and times, last export
INSTALL = "pip install 'bnexp[mlflow]'"

# bnexp's status -> MLflow's; another (unknown: a hand-made summary) -> FINISHED
MLFLOW_STATUS = {"completed": "FINISHED", "diverged": "FINISHED", "failed": "FAILED",
                 "interrupted": "KILLED", "running": "RUNNING"}

# the whole export: no "View run at" lines on stdout (MLflow prints two per run)
QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
# the first request: no retries, a short wait (MLflow's defaults: 7 retries, 120 s each)
QUICK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
# the rest, where the user has not set them: a server that answered may blink
PATIENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
           "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}

_BAD_KEY_CHARACTERS = re.compile(r"[^/\w.\- ]")  # what MLflow allows in a key, on any OS


def export(runs_dir: Path, tracking_uri: str = "sqlite:///mlflow.db",
           experiment: str | None = None,
           warn: Callable[[str], None] | None = None) -> list[dict]:
    """Every run folder beneath runs_dir into the MLflow experiment `experiment` (default:
    runs_dir's name) at tracking_uri, created or brought up to date; one dict per run
    folder: folder, bnexp_run_id, mlflow_run_id, action (created, updated, unchanged),
    metric_steps (the metric values sent), params (the params sent). Folders that are no
    readable run are passed over, each with a call of warn (default: warnings.warn).
    BadInput (one line) for a missing folder, a missing mlflow, or a tracking server that
    cannot be reached or refuses."""
    runs_dir = Path(runs_dir)
    warn = warn or warnings.warn
    if not runs_dir.is_dir():
        raise BadInput(f"{runs_dir}: RUNS_DIR: no such folder")
    mlflow = _import_mlflow()  # before reading thousands of run folders
    records, skipped = runs.scan(runs_dir, with_config=True)
    for message in skipped:
        warn(message)
    name = experiment or runs_dir.resolve().name or "bnexp"  # "/" has no name
    with (_refused_as_bad_input(mlflow, tracking_uri), _quiet_logs(),
          _environment(QUIET, override=True)):
        with _environment(QUICK, override=True):
            client = mlflow.tracking.MlflowClient(tracking_uri)
            experiment_id = _experiment_id(client, name)
        with _environment(PATIENT, override=False):
            found = _runs_by_tag(client, experiment_id)
            return [_export_run(client, experiment_id, record, found.get(run_id))
                    for run_id, record in _unique(records, warn)]


def _import_mlflow():
    try:
        import mlflow
        import mlflow.tracking
    except ImportError:
        raise BadInput(f"MLflow is not installed: {INSTALL}") from None
    return mlflow


@contextlib.contextmanager
def _refused_as_bad_input(mlflow, tracking_uri: str) -> Iterator[None]:
    """An MlflowException (a server that does not answer, a bad URI, a refused value) as
    one line of BadInput naming the tracking URI."""
    try:
        yield
    except mlflow.exceptions.MlflowException as e:
        raise BadInput(f"MLflow at {tracking_uri}: {_reason(str(e.message))}") from None


def _reason(message: str) -> str:
    """An MlflowException's message, short: a request that failed (MLflow quotes urllib3's
    whole retry report) as its cause ("Connection refused")."""
    message = " ".join(message.split())
    if "Max retries exceeded" in message or "failed with exception" in message:
        cause = re.search(r"\[Errno -?\d+\] ([^'\"()]+)|(timed out|[Rr]ead timed out)", message)
        return "cannot reach the tracking server" + (
            f" ({(cause.group(1) or cause.group(2)).strip()})" if cause else "")
    return message[:300]


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """MLflow's INFO lines (creating a SQLite store's tables) held back for the block."""
    import logging

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _environment(values: dict[str, str], override: bool) -> Iterator[None]:
    """os.environ with `values` set (where unset, unless override) for the block only:
    MLflow reads its HTTP settings from the environment at each request."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if override or key not in os.environ:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _experiment_id(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _runs_by_tag(client, experiment_id: str) -> dict:
    """RUN_ID_TAG's value -> the active MLflow run of the experiment that carries it (a run
    deleted in MLflow is exported anew), read page by page."""
    found, token = {}, None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        for run in page:
            found.setdefault(run.data.tags.get(RUN_ID_TAG), run)
        token = page.token
        if not token:
            return found


def _unique(records: list, warn) -> list[tuple[str, object]]:
    """(bnexp run id, record) of each run folder; a second folder of the same name
    elsewhere beneath runs_dir is left out (it would update the first's MLflow run)."""
    kept: dict[str, object] = {}
    for record in records:
        run_id = runs.plain_text(record.path.name)
        if run_id in kept:
            warn(f"skipped {record.path}: another run folder of this name "
                 f"({kept[run_id].path}) is exported as {RUN_ID_TAG} {run_id}")
            continue
        kept[run_id] = record
    return list(kept.items())


# ------------------------------------------------------------------ one run


def _export_run(client, experiment_id: str, record, found) -> dict:
    """One run folder into its MLflow run (`found`, or a new one); what was sent. The
    fingerprint tag goes last: an export cut short is finished by the next."""
    fingerprint = _fingerprint(record)
    result = {"folder": str(record.path), "bnexp_run_id": runs.plain_text(record.path.name)}
    if found is not None and found.data.tags.get(FINGERPRINT_TAG) == fingerprint:
        return {**result, "mlflow_run_id": found.info.run_id, "action": "unchanged",
                "metric_steps": 0, "params": 0}
    run_id = found.info.run_id if found else _create_run(client, experiment_id, record)
    have = found.data.params if found else {}
    params = {k: v for k, v in config_params(record.config or {}).items() if k not in have}
    _log_params(client, run_id, params)
    series = metric_series(record.path)
    steps = _send_metrics(client, run_id, series, _last_steps(client, run_id, found, series))
    for file in _artifact_files(record.path):
        client.log_artifact(run_id, str(file))
    _log_batch(client, run_id, tags=_tags(record) | {FINGERPRINT_TAG: fingerprint})
    _set_status(client, run_id, record)
    return {**result, "mlflow_run_id": run_id, "action": "updated" if found else "created",
            "metric_steps": steps, "params": len(params)}


def _create_run(client, experiment_id: str, record) -> str:
    started = timestamp_ms(record.summary.get("started"))
    run = client.create_run(experiment_id, start_time=started, run_name=record.path.name,
                            tags={RUN_ID_TAG: runs.plain_text(record.path.name)})
    return run.info.run_id


def _fingerprint(record) -> str:
    """The effective status (a "running" run whose process died reads interrupted with
    no file changed) and each regular file's name, size and modification time."""
    parts = [record.status]
    for file in _artifact_files(record.path):
        info = file.stat()
        parts.append(f"{file.name}\0{info.st_size}\0{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8", "backslashreplace")).hexdigest()


def _artifact_files(folder: Path) -> list[Path]:
    """The run folder's regular files, not hidden (a temp file mid-rename), not links,
    not in subfolders (tensorboard/)."""
    return sorted(f for f in folder.iterdir()
                  if not f.name.startswith(".") and not f.is_symlink() and f.is_file())


def _tags(record) -> dict[str, str]:
    """summary.json's fields as tags; a field the summary lacks (an older bnexp) is none."""
    summary = record.summary
    versions = summary.get("versions") if isinstance(summary.get("versions"), dict) else {}
    tags = {"status": record.status, "seed": summary.get("seed"),
            "config_hash": record.config_hash, "bnexp_version": versions.get("bnexp"),
            "git_commit": summary.get("git_commit"), "label": record.label,
            "mlflow.source.git.commit": summary.get("git_commit")}
    return {key: str(value) for key, value in tags.items() if value is not None}


def _set_status(client, run_id: str, record) -> None:
    status = MLFLOW_STATUS.get(record.status, "FINISHED")
    if status == "RUNNING":
        client.update_run(run_id, status=status)
    else:
        ended = timestamp_ms(record.summary.get("ended"))
        client.set_terminated(run_id, status=status, end_time=ended)


def timestamp_ms(text) -> int | None:
    """summary.json's "2026-12-07T18:09:44+0000" in milliseconds since 1970; None where
    absent or not such a time (MLflow then takes the time of the export)."""
    try:
        return int(datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z").timestamp() * 1000)
    except ValueError:
        return None


# ------------------------------------------------------------------ params


def config_params(config: dict) -> dict[str, object]:
    """Dotted config key -> its value (model.bn.placement -> "before"), the keys made
    fit for MLflow; lists, null and booleans stay values here: param_text writes them."""
    return {mlflow_key(key): value for key, value in flatten(config).items()}


def param_text(value) -> str:
    """A config value as load_runs shows it: lists "[300, 100]", null, true, false."""
    return str(format_value(value))


def _log_params(client, run_id: str, params: dict[str, object]) -> None:
    """Each param; a value past MLflow's length limit (which MLflow would cut) as the
    artifact params/<key>.json (the value in JSON) and the param saying where."""
    from mlflow.entities import Param
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    sent = []
    with tempfile.TemporaryDirectory() as folder:
        for key, value in params.items():
            text = param_text(value)
            if len(text) > MAX_PARAM_VAL_LENGTH:
                file = Path(folder) / f"{key}.json"
                file.write_text(json.dumps(value, indent=1, default=str))
                client.log_artifact(run_id, str(file), artifact_path="params")
                text = f"artifact params/{key}.json ({len(text)} characters)"
            sent.append(Param(key, text))
        _log_batch(client, run_id, params=sent)


# ------------------------------------------------------------------ metrics


def metric_series(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every metric series of a run folder, key -> [(step, value)] in the files' order,
    blank (NaN) cells left out:

    - metrics.csv: each column by its name, step = epoch (1, 2, ...);
    - grad_norms.csv: grad_norm/<layer>/<weight>, step = the training step;
    - weight_norms.csv: weight_norm/<layer>/<weight> and effective_lr/<layer>/<weight>,
      step = epoch (0: at initialization);
    - predictiveness.csv: predictiveness/loss and predictiveness/grad_norm, and
      predictiveness/<loss_after|grad_change|smoothness>/scale_<scale> (scale_0.5),
      step = the training step.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    for row in runs.read_metrics(folder):
        for column, value in row.items():
            if column != "epoch":
                _add(series, column, row["epoch"], value)
    grads = runs.read_table(folder, "grad_norms.csv")
    for row in grads.itertuples(index=False):
        _add(series, f"grad_norm/{row.layer}/{row.weight}", row.step, row.grad_norm)
    norms = runs.read_table(folder, "weight_norms.csv")
    for row in norms.itertuples(index=False):
        _add(series, f"weight_norm/{row.layer}/{row.weight}", row.epoch, row.norm)
        if "effective_lr" in norms:
            _add(series, f"effective_lr/{row.layer}/{row.weight}", row.epoch,
                 row.effective_lr)
    _add_predictiveness(series, runs.read_table(folder, "predictiveness.csv"))
    return series


def _add_predictiveness(series: dict, table) -> None:
    """predictiveness.csv: one row per probe step and scale. loss and grad_norm are the
    step's (measured at the weights, before any trial step: the same in each scale's
    row); loss_after, grad_change and smoothness a series per scale. step_size (scale x
    lr) is no series: the CSV, an artifact, holds it."""
    if table.empty or "scale" not in table:
        return
    steps = set()
    for row in table.to_dict("records"):
        if row["step"] not in steps:  # the step's first row
            steps.add(row["step"])
            for column in ("loss", "grad_norm"):
                _add(series, f"predictiveness/{column}", row["step"], row.get(column))
        for column in ("loss_after", "grad_change", "smoothness"):
            _add(series, f"predictiveness/{column}/scale_{row['scale']:g}", row["step"],
                 row.get(column))


def _add(series: dict, key: str, step, value) -> None:
    if isinstance(value, int | float) and math.isfinite(value):
        series.setdefault(mlflow_key(key), []).append((int(step), float(value)))


def mlflow_key(key: str) -> str:
    """key with each character MLflow refuses in a param or metric name as "_"."""
    return _BAD_KEY_CHARACTERS.sub("_", key)


def _last_steps(client, run_id: str, found, series: dict) -> dict[str, int]:
    """The last step MLflow holds of each metric the run folder has (one history read per
    metric the MLflow run already has)."""
    if found is None:
        return {}
    held = set(found.data.metrics) & set(series)
    return {key: max(m.step for m in client.get_metric_history(run_id, key)) for key in held}


def _send_metrics(client, run_id: str, series: dict, last: dict[str, int]) -> int:
    """Each value whose step is past the last one MLflow holds of its key; how many."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    new = [Metric(key, value, now, step) for key, points in series.items()
           for step, value in points if step > last.get(key, -1)]
    _log_batch(client, run_id, metrics=new)
    return len(new)


def _log_batch(client, run_id: str, metrics=(), params=(), tags=None) -> None:
    """client.log_batch within MLflow's limits per request: 1,000 metrics, 100 params,
    100 tags."""
    from mlflow.entities import RunTag

    metrics, params = list(metrics), list(params)
    tag_list = [RunTag(key, value) for key, value in (tags or {}).items()]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start:start + 100])
    for start in range(0, len(tag_list), 100):
        client.log_batch(run_id, tags=tag_list[start:start + 100])
