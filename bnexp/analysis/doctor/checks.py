"""The checks of `bnexp doctor`: each one function, `check_<id>(run) -> list[Finding]`,
whose docstring states its rule; the thresholds are the constants below. The BN checks
are skipped for a model without BN.
"""

from __future__ import annotations

import math

from bnexp import runs
from bnexp.analysis.doctor.run import CheckedRun, Finding, number
from bnexp.config import DEFAULT_CPU_REPLICAS
from bnexp.runs import evals

CHANCE = 0.1  # accuracy of guessing among 10 classes (every dataset bnexp has)
AT_CHANCE = 0.05  # inference accuracy <= CHANCE + this is "at chance"
BATCH_STATS_WORK = 0.2  # batch-statistics accuracy >= CHANCE + this: BN itself works
TRAIN_WORKS = 0.3  # train accuracy >= CHANCE + this: training works (no batch-stats column)
GAP = 0.05  # batch-statistics accuracy above the moving statistics' by more: a lag
FADE = 3.0  # steps momentum m needs: FADE / (1 - m); then an initial value weighs m^n < 5%
SMALL_BATCH = 16  # BN normalizing over fewer examples than this: noisy statistics
SATURATION = {"sigmoid": 4.0, "tanh": 2.5}  # |x| beyond which the derivative is ~0
SATURATED_SHARE = 0.5  # this share of the p15..p85 band beyond the threshold: saturated
PASS_THROUGH = ("max_pool", "avg_pool", "flatten")  # a per-channel bias survives these


# ---------------------------------------------------------------- the model's layers


def has_bn(run: CheckedRun) -> bool:
    """A preset with model.bn.placement other than none (on layers it applies to) or
    model.bn.input; a layer list with a bn layer."""
    return bool(run.bn_layers)


def _momentum(run: CheckedRun) -> float:
    """The slowest BN layer's momentum (Keras and bnexp's default 0.9 where unset)."""
    values = [number(layer.get("momentum")) for layer in run.bn_layers]
    return max((v for v in values if v is not None), default=0.9)


def _steps_needed(momentum: float) -> int:
    return math.ceil(round(FADE / (1.0 - momentum), 6))  # 3 / (1 - 0.9) is 30.000...04


def _bn_names(layers: list[dict]) -> str:
    names = [layer["name"] for layer in layers]
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


# ---------------------------------------------------------------- the checks


def check_diverged(run: CheckedRun) -> list[Finding]:
    """error: the run's status is diverged (the loss became NaN or infinite)."""
    if run.status != "diverged":
        return []
    at = run.summary.get("diverged_at") or {}
    where = (f"at epoch {at.get('epoch')}, step {at.get('step')} of that epoch"
             if at else "during training")
    lr = number(run.get("optimizer.learning_rate"))
    optimizer = run.get("optimizer.name", "sgd")
    bn = has_bn(run)
    evidence = (f"the training loss became NaN or infinite {where}, after "
                f"{run.epochs_done} finished epoch(s); optimizer {optimizer}, learning rate "
                f"{_g(lr)}; the model has {'BN' if bn else 'no BN'}")
    lower = f" (e.g. {_g(lr / 10)})" if lr else ""
    advice = f"Lower optimizer.learning_rate{lower}"
    if bn:
        advice += ("; the model has BN already, so the rate is too high even for it (d2l's "
                   "BN-LeNet trains with SGD at 1.0)")
    else:
        advice += (", or add BN (model.bn.placement: before): it keeps each layer's inputs "
                   "normalized, so the same network trains at much higher rates")
    return [_finding(run, "diverged", "error", evidence, advice + ".")]


def _at_chance_while_working(run: CheckedRun) -> str | None:
    """Evidence that inference with the moving statistics is near chance while BN with
    batch statistics (or training) works; None otherwise."""
    acc, batch, train = (run.last(k) for k in ("test_acc", "test_acc_batchstats", "train_acc"))
    if acc is None or acc > round(CHANCE + AT_CHANCE, 6):
        return None
    if batch is not None:
        if batch < round(CHANCE + BATCH_STATS_WORK, 6):
            return None
        return (f"test_acc {acc:.3f} with the moving statistics (chance {CHANCE:.1f}) but "
                f"{batch:.3f} with batch statistics (test_acc_batchstats)")
    if train is None or train < round(CHANCE + TRAIN_WORKS, 6):
        return None
    return (f"test_acc {acc:.3f} with the moving statistics (chance {CHANCE:.1f}) while "
            f"train_acc is {train:.3f}")


def _known_causes(run: CheckedRun) -> list[str]:
    """Config settings that break the moving statistics whatever the run's length, each
    with the BN layers that have it."""
    causes: dict[str, list[dict]] = {}
    for layer in run.bn_layers:
        if layer.get("fault"):
            causes.setdefault(f"fault {layer['fault']}", []).append(layer)
        if layer.get("behaviour") == "frozen_moving_stats":
            causes.setdefault("behaviour frozen_moving_stats", []).append(layer)
    return [f"{cause} ({_bn_names(layers)})" for cause, layers in causes.items()]


def _too_short(run: CheckedRun) -> bool:
    """The run is shorter than the steps its momentum needs (known step count only)."""
    steps = run.steps_trained
    return steps is not None and steps < _steps_needed(_momentum(run))


def _length_evidence(run: CheckedRun) -> str:
    momentum = _momentum(run)
    steps = run.steps_trained
    trained = f"{steps} steps" if steps is not None else "an unknown number of steps"
    return (f"BN momentum {momentum:g} needs ~{_steps_needed(momentum)} steps "
            f"(ceil({FADE:g} / (1 - momentum))) for the initial moving statistics to fade; "
            f"the run trained {trained} ({run.epochs_done} epoch(s))")


def check_moving_stats_broken(run: CheckedRun) -> list[Finding]:
    """error: the model has BN and the last epoch's test_acc (moving statistics) is at most
    CHANCE + AT_CHANCE while test_acc_batchstats >= CHANCE + BATCH_STATS_WORK (or, without
    that column, train_acc >= CHANCE + TRAIN_WORKS), and the run's length does not explain
    it: it trained at least the steps its momentum needs, or a config fault / frozen
    moving statistics is set. (Too short a run with no such setting: moving_stats_lag.)"""
    shown = _at_chance_while_working(run)
    causes = _known_causes(run)
    if shown is None or (_too_short(run) and not causes) or _degenerate_layers(run):
        return []
    evidence = f"{shown}; {_length_evidence(run)}"
    variance_init = {str(_init_name(layer.get("moving_variance_initializer")))
                     for layer in run.bn_layers} - {"None", "ones"}
    if causes:
        evidence += "; config: " + ", ".join(causes)
    if variance_init:
        evidence += f"; moving variance initialised with {', '.join(sorted(variance_init))}"
    advice = ("The moving averages are never updated or are updated wrongly (notebook 004's "
              "update, model.bn.fault: mxnet_moving_average; frozen statistics; a moving "
              "variance initialised to 0 and never updated). Fix the update: model.bn.fault: "
              "null and model.bn.behaviour: standard (moving = momentum * moving + (1 - "
              "momentum) * batch, for the mean and the variance), "
              "model.bn.moving_variance_initializer: ones; or recompute the statistics before "
              "evaluation with train.precise_bn: N.")
    return [_finding(run, "moving_stats_broken", "error", evidence, advice)]


def check_moving_stats_lag(run: CheckedRun) -> list[Finding]:
    """warning: the model has BN, not moving_stats_broken, degenerate_batch, or (in a run
    long enough for its momentum) dropout_before_bn, and test_acc_batchstats exceeds
    test_acc by more than GAP, or inference is at chance while batch statistics work in a
    run shorter than FADE / (1 - momentum) steps. info: no batch-statistics column (the
    gap was not measured) and the run is shorter than the steps its momentum needs."""
    acc, batch = run.last("test_acc"), run.last("test_acc_batchstats")
    shown = _at_chance_while_working(run)
    if shown is not None and not (_too_short(run) and not _known_causes(run)):
        return []  # moving_stats_broken
    if _degenerate_layers(run) or (_dropout_before_bn(run) and not _too_short(run)):
        return []  # degenerate_batch; dropout_before_bn's variance shift, not the lag
    advice = (f"Lower model.bn.momentum (0.9 needs ~{_steps_needed(0.9)} steps, 0.99 "
              f"~{_steps_needed(0.99)}), train longer, or set train.precise_bn: N to "
              "recompute the moving statistics from N training examples before evaluation.")
    if shown is not None:
        evidence = f"{shown}; {_length_evidence(run)}"
    elif acc is not None and batch is not None and round(batch - acc, 6) > GAP:
        evidence = (f"test accuracy {batch - acc:.3f} higher with batch statistics "
                    f"({batch:.3f}) than with the moving statistics ({acc:.3f}); "
                    f"{_length_evidence(run)}")
        if not _too_short(run) and run.steps_trained is not None:
            evidence += (": longer than the momentum needs, so the moving statistics trail "
                         "weights that still change fast")
    elif batch is None and acc is not None and _too_short(run):
        evidence = (f"{_length_evidence(run)}; the gap itself was not measured "
                    "(diagnostics.batch_stats_eval: true measures it)")
        return [_finding(run, "moving_stats_lag", "info", evidence, advice)]
    else:
        return []
    return [_finding(run, "moving_stats_lag", "warning", evidence, advice)]


def check_batch_stats_at_inference(run: CheckedRun) -> list[Finding]:
    """error: a BN layer's behaviour (model.bn.behaviour, or a listed bn layer's own) is
    batch_stats_at_inference: inference normalizes each batch by its own statistics."""
    layers = [layer for layer in run.bn_layers
              if layer.get("behaviour") == "batch_stats_at_inference"]
    if not layers:
        return []
    evidence = (f"behaviour batch_stats_at_inference on {_bn_names(layers)}: at inference "
                "each example is normalized with its batch's mean and variance")
    acc = run.last("test_acc")
    if acc is not None:
        evidence += (f"; test_acc {acc:.3f} holds only for test batches of "
                     f"{run.get('data.batch_size', '?')} mixed examples")
    advice = ("Use the moving statistics at inference: model.bn.behaviour: standard (a "
              "custom layer must pass training=False when predicting), so a prediction does "
              "not depend on the other examples in its batch, and a batch of one works.")
    return [_finding(run, "batch_stats_at_inference", "error", evidence, advice)]


def _normalized_over(run: CheckedRun) -> tuple[int, str, str] | None:
    """(examples each BN normalization sees, how the config makes it so, the fix):
    data.batch_size, or model.bn.virtual_batch_size (ghost batches), or the batch's share
    per replica with train.strategy: mirrored and model.bn.synchronized false; None where
    the batch size is unknown."""
    batch = run.get("data.batch_size")
    if not isinstance(batch, int):
        return None
    ghost = run.get("model.bn.virtual_batch_size")
    mirrored = (run.get("train.strategy") == "mirrored"
                and not run.get("model.bn.synchronized", False))
    size, how, fix = batch, f"data.batch_size {batch}", "a larger data.batch_size (>= 32)"
    if mirrored:
        replicas = run.get("train.replicas") or DEFAULT_CPU_REPLICAS
        size = batch // replicas
        how = (f"data.batch_size {batch} split over {replicas} replicas with "
               "model.bn.synchronized false")
        fix = "model.bn.synchronized: true (BN over the global batch) or a larger batch"
    if isinstance(ghost, int) and ghost < size:  # ghost batches within a batch or a slice
        size, how = ghost, f"model.bn.virtual_batch_size {ghost} (ghost batches)"
        fix = "a larger model.bn.virtual_batch_size (or null)"
    return size, how, fix


def _degenerate_layers(run: CheckedRun) -> list[dict]:
    """The BN layers on vectors (after a dense layer or flatten: no positions to average
    over) when each normalization sees one example: their batch variance is 0."""
    over = _normalized_over(run)
    if over is None or over[0] != 1:
        return []
    return [layer for layer in run.bn_layers if len(layer.get("input_shape") or ()) == 1]


def check_degenerate_batch(run: CheckedRun) -> list[Finding]:
    """error: each BN normalization sees one example (see small_batch for how) and a BN
    layer normalizes vectors: every feature's batch variance is 0 and its output is beta
    whatever the input, so nothing before it learns. (Not small_batch, and not the
    moving statistics' lag or breakage: those checks stay silent here.)"""
    layers = _degenerate_layers(run)
    if not layers:
        return []
    _, how, fix = _normalized_over(run)
    evidence = (f"BN normalizes over 1 example at a time ({how}); on vectors "
                f"({_bn_names(layers)}) each feature's batch mean is the example itself and "
                "its variance 0, so these layers output beta whatever their input")
    train, acc = run.last("train_acc"), run.last("test_acc")
    if train is not None:
        evidence += f"; train_acc {train:.3f}" + (f", test_acc {acc:.3f}" if acc is not None
                                                  else "") + f" (chance {CHANCE:.1f})"
    advice = (f"Use {fix}: BN needs at least two examples per normalization, and a dozen "
              "or more to be stable. With one example per batch, normalize each example "
              "on its own instead: model.bn.kind: layer (or group).")
    return [_finding(run, "degenerate_batch", "error", evidence, advice)]


def check_small_batch(run: CheckedRun) -> list[Finding]:
    """warning: the model has BN and each BN normalization sees fewer than SMALL_BATCH
    examples: data.batch_size, or model.bn.virtual_batch_size (ghost batches), or the
    batch's share per replica with train.strategy: mirrored and model.bn.synchronized
    false. Not where degenerate_batch (one example, on vectors) says more."""
    over = _normalized_over(run)
    if over is None or over[0] >= SMALL_BATCH or _degenerate_layers(run):
        return []
    size, how, fix = over
    evidence = f"BN normalizes over {size} examples at a time ({how}); fewer than {SMALL_BATCH}"
    advice = (f"Use {fix}: the mean and variance of so few examples are noisy estimates, so "
              "training normalizes differently from inference and the gradients are noisy. "
              "Where the batch cannot grow: model.bn.kind: group (or layer) normalizes "
              "each example on its own, without the batch (Wu & He 2018); model.bn.kind: "
              "renorm keeps batch norm but corrects it toward the moving statistics (Ioffe "
              "2017).")
    return [_finding(run, "small_batch", "warning", evidence, advice)]


def check_nothing_trains(run: CheckedRun) -> list[Finding]:
    """warning: a completed run of 2 or more epochs whose train_acc stayed at most CHANCE
    + AT_CHANCE in every epoch, unless degenerate_batch explains it; the evidence names
    what train.trainable or layers' `trainable: false` froze (summary.json params)."""
    accs = [number(row.get("train_acc")) for row in run.rows]
    if (run.status != "completed" or len(accs) < 2 or None in accs
            or max(accs) > round(CHANCE + AT_CHANCE, 6) or _degenerate_layers(run)):
        return []
    evidence = (f"train_acc stayed at chance ({CHANCE:.1f}) for all {len(accs)} epochs: "
                f"{accs[0]:.3f} in the first, {accs[-1]:.3f} in the last")
    params = run.summary.get("params") or {}
    frozen, trained = number(params.get("frozen")), number(params.get("trainable"))
    if frozen and trained is not None:
        evidence += (f"; {int(trained)} weights train, {int(frozen)} are frozen "
                     f"(train.trainable: {run.get('train.trainable', 'all')}, or layers' "
                     "trainable: false)")
    advice = ("If the weights were frozen on purpose (a frozen random network sits at "
              "chance), this is the result. Otherwise: train.trainable: all and no layer's "
              "trainable: false; a learning rate neither tiny nor huge; train.from_logits "
              "true for a last layer without softmax.")
    return [_finding(run, "nothing_trains", "warning", evidence, advice)]


def _shifted_results(run: CheckedRun) -> dict[str, dict[str, float]]:
    """{condition (noise=80, data=<folder>, ...): {stats: accuracy}} of eval.csv's rows
    of the run's last evaluated epoch on other than its clean test set; the last row of
    each stats (a batch row: the largest accuracy of its batch sizes)."""
    rows = [r for r in evals.read(run.path) if r["epoch"] is not None
            and number(r["acc"]) is not None]
    if not rows:
        return {}
    last = max(r["epoch"] for r in rows)
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        condition = evals.condition(r["data"], r["shift"])
        if r["epoch"] == last and condition != evals.CLEAN:
            seen = out.setdefault(condition, {})
            acc = float(r["acc"])
            seen[r["stats"]] = max(acc, seen.get("batch", acc)) if r["stats"] == "batch" else acc
    return out


def check_domain_shift(run: CheckedRun) -> list[Finding]:
    """warning: on shifted test data (eval.csv: `bnexp eval --shift`/`--data`, or
    data.test_shift) the accuracy with the test data's own statistics (batch or adapt)
    exceeds the moving statistics' by more than GAP, while on the clean test set it does
    not (the gap test_acc_batchstats - test_acc at most GAP, or not measured): the moving
    statistics are right for the training data, wrong for the shifted data. (Not
    moving_stats_lag, whose gap is on the clean test set.)"""
    acc, batch = run.last("test_acc"), run.last("test_acc_batchstats")
    if acc is not None and batch is not None and round(batch - acc, 6) > GAP:
        return []  # a gap on clean data too: moving_stats_lag's
    found = []
    for condition, accs in _shifted_results(run).items():
        population = accs.get("population")
        own = {k: v for k, v in accs.items() if k != "population"}
        if population is None or not own or round(max(own.values()) - population, 6) <= GAP:
            continue
        words = {"batch": "each test batch's own statistics",
                 "adapt": "statistics recomputed on it (AdaBN)"}
        text = (f"on {condition} test data, accuracy {population:.3f} with the moving "
                "statistics, " + ", ".join(f"{v:.3f} with {words[k]}" for k, v in own.items()))
        found.append((condition, text))
    if not found:
        return []
    clean = (f"on the clean test set {acc:.3f} with the moving statistics"
             + (f" and {batch:.3f} with the batches' own" if batch is not None else "")
             if acc is not None else "the clean test set not measured")
    evidence = "; ".join(text for _, text in found) + f"; {clean}"
    first = found[0][0]
    shift = ("--data PATH" if first.startswith("data=") else
             " ".join(f"--shift {part}" for part in first.split("+")))
    advice = ("The moving statistics fit the training data, not the shifted data. Recompute "
              f"BN's statistics on the shifted data: bnexp eval RUN {shift} --stats adapt "
              "(AdaBN, Li et al. 2016), or normalize with each test batch's own statistics "
              "(--stats batch); or train on data like it.")
    return [_finding(run, "domain_shift", "warning", evidence, advice)]


def _dropout_before_bn(run: CheckedRun) -> list[tuple[dict, list[dict]]]:
    """(dropout layer, the BN layers after it) for each dropout with a rate > 0 that
    some BN layer follows, in the order the layers are built."""
    layers = run.layers
    found = []
    for i, layer in enumerate(layers):
        rate = number(layer.get("rate"))
        if layer.get("type") == "dropout" and rate:
            after = [later for later in layers[i + 1:] if later.get("type") == "bn"]
            if after:
                found.append((layer, after))
    return found


def check_dropout_before_bn(run: CheckedRun) -> list[Finding]:
    """warning: a dropout layer (rate > 0) comes before a BN layer (Li et al. 2019's
    variance shift: dropout scales its output's variance in training only, so the BN
    after it normalizes at inference with a moving variance learned on other inputs);
    info where the run measured the gap (test_acc_batchstats - test_acc) and it is at
    most GAP."""
    pairs = _dropout_before_bn(run)
    if not pairs:
        return []
    evidence = "; ".join(f"dropout {d['name']} (rate {number(d['rate']):g}) before "
                         f"{_bn_names(bns)}" for d, bns in pairs)
    evidence += (": in training dropout changes the variance of what these BN layers see; "
                 "at inference it is off, so their moving variance no longer fits")
    acc, batch = run.last("test_acc"), run.last("test_acc_batchstats")
    severity = "warning"
    if acc is not None and batch is not None:
        evidence += (f"; test accuracy {batch:.3f} with batch statistics, {acc:.3f} with "
                     f"the moving ones (gap {batch - acc:+.3f})")
        severity = "warning" if round(batch - acc, 6) > GAP else "info"
    advice = ("Put dropout after the last BN layer (model.dropout.placement: after_bn: "
              "before the output layer only), or lower its rate; or recompute the moving "
              "statistics without dropout before evaluation (train.precise_bn: N). Li et "
              "al. 2019, \"Understanding the disharmony between dropout and batch "
              "normalization\".")
    return [_finding(run, "dropout_before_bn", severity, evidence, advice)]


def check_bias_before_bn(run: CheckedRun) -> list[Finding]:
    """info: a conv or dense layer with a bias and no activation of its own whose output
    goes straight into a bn layer (pooling and flatten in between keep a per-channel bias
    constant). A preset has this with model.use_bias: true and model.bn.placement: before."""
    layers = run.layers
    wasted = []
    for i, layer in enumerate(layers):
        if layer.get("type") not in ("conv", "dense") or not _has_bias(run, layer):
            continue
        if layer.get("activation") not in (None, "linear"):
            continue
        j = i + 1
        while j < len(layers) and layers[j].get("type") in PASS_THROUGH:
            j += 1
        if j < len(layers) and layers[j].get("type") == "bn":
            wasted.append((layer["name"], layers[j]["name"],
                           layer.get("filters") or layer.get("units")))
    if not wasted:
        return []
    sizes = [n for _, _, n in wasted if isinstance(n, int)]
    count = f"{sum(sizes)} bias parameters" if len(sizes) == len(wasted) else "bias parameters"
    evidence = (f"{count} that BN cancels: "
                + ", ".join(f"{core} ({n} biases) -> {bn}" for core, bn, n in wasted))
    where = ("model.use_bias: auto (or false)" if not run.layer_list
             else "use_bias: false on these layers")
    advice = (f"Set {where}: BN subtracts the batch mean, so a bias before it has no effect "
              "on the output and gets no useful gradient; BN's beta takes its role.")
    return [_finding(run, "bias_before_bn", "info", evidence, advice)]


def _has_bias(run: CheckedRun, layer: dict) -> bool:
    use_bias = layer.get("use_bias", True)
    if use_bias is None:  # unset: model.use_bias decides; auto drops it before BN
        use_bias = run.get("model.use_bias", "auto")
    return use_bias is True


def check_saturated_activations(run: CheckedRun) -> list[Finding]:
    """warning: in activations.csv (unit "all", the last recorded step), the input of a
    sigmoid or tanh layer whose median lies beyond |x| > SATURATION[activation] or whose
    p15..p85 band lies beyond it for at least SATURATED_SHARE of its width."""
    frame = runs.read_table(run.path, "activations.csv")  # empty unless it has its columns
    if frame.empty:
        return []
    frame = frame[frame["unit"].astype(str) == "all"]
    if frame.empty:
        return []
    last_step, first_step = frame["step"].max(), frame["step"].min()
    found = []
    for _, row in frame[frame["step"] == last_step].iterrows():
        name = str(row["layer"])
        activation = _activation_of(run, name)
        limit = SATURATION.get(activation)
        if limit is None:
            continue
        p15, p50, p85 = (number(row[k]) for k in ("p15", "p50", "p85"))
        if p15 is None or p50 is None or p85 is None:  # not recorded: not saturated
            continue
        if abs(p50) <= limit and _share_beyond(p15, p85, limit) < SATURATED_SHARE:
            continue
        text = (f"{name} ({activation}, saturates beyond |x| > {limit:g}) at step "
                f"{int(last_step)}: p15 {p15:.2f}, p50 {p50:.2f}, p85 {p85:.2f}")
        start = frame[(frame["step"] == first_step) & (frame["layer"] == row["layer"])]
        if first_step != last_step and not start.empty:
            s = start.iloc[0]
            text += (f" (at step {int(first_step)}: p15 {s['p15']:.2f}, p50 {s['p50']:.2f}, "
                     f"p85 {s['p85']:.2f})")
        found.append(text)
    if not found:
        return []
    evidence = "activation inputs in the flat tails: " + "; ".join(found)
    advice = ("Put BN before the activation (model.bn.placement: before) so its input stays "
              "near zero mean and unit variance; or lower optimizer.learning_rate; or use an "
              "init scaled for the activation (model.init: glorot_uniform for sigmoid/tanh). "
              "Saturated units pass almost no gradient.")
    return [_finding(run, "saturated_activations", "warning", evidence, advice)]


def _activation_of(run: CheckedRun, layer_name: str) -> str | None:
    """The activation function of an activations.csv layer: the listed layer of that name,
    a preset's `<core>_<activation>` name, or a layer list's only activation function."""
    listed = [layer for layer in run.layers if layer.get("type") == "activation"]
    for layer in listed:
        if layer.get("name") == layer_name:
            return layer.get("activation")
    for activation in SATURATION:
        if layer_name.endswith(f"_{activation}"):
            return activation
    functions = {layer.get("activation") for layer in listed}
    return functions.pop() if len(functions) == 1 else None


def _share_beyond(low: float, high: float, limit: float) -> float:
    """The share of [low, high] outside [-limit, limit]; a zero-width band: 1 or 0."""
    if high <= low:
        return float(abs(low) > limit)
    inside = max(0.0, min(high, limit) - max(low, -limit))
    return 1.0 - inside / (high - low)


CHECKS = [check_diverged, check_degenerate_batch, check_moving_stats_broken,
          check_moving_stats_lag, check_batch_stats_at_inference, check_small_batch,
          check_dropout_before_bn, check_domain_shift, check_bias_before_bn,
          check_saturated_activations, check_nothing_trains]
BN_CHECKS = {check_degenerate_batch, check_moving_stats_broken, check_moving_stats_lag,
             check_batch_stats_at_inference, check_small_batch, check_dropout_before_bn,
             check_domain_shift, check_bias_before_bn}
IDS = [c.__name__.removeprefix("check_") for c in CHECKS]


# ---------------------------------------------------------------- helpers


def _finding(run: CheckedRun, id_: str, severity: str, evidence: str, advice: str) -> Finding:
    return Finding(str(run.path), id_, severity, evidence, advice)


def _g(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _init_name(init) -> str | None:
    if isinstance(init, dict):
        return init.get("name")
    return init
