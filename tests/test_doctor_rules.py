"""bnexp doctor's rules branch by branch: the exact findings (id, severity, the evidence
and advice users read) of runs built for each rule, its thresholds at and either side of
their edges, and the helpers' results. No TensorFlow."""

import json
import math

import pytest

from bnexp import runs
from bnexp.analysis import doctor
from bnexp.analysis.doctor import checks
from bnexp.analysis.doctor.run import CheckedRun
from bnexp.errors import BadInput
from tests.helpers import fake_run_rows

# 1000 training examples in batches of 50: 20 steps an epoch; momentum 0.9 needs 30 steps,
# 0.99 needs 300
TRAIN = 1000
GOOD = {"train_loss": 0.4, "train_acc": 0.88, "test_loss": 0.45, "test_acc": 0.86,
        "test_acc_batchstats": 0.87}
PRESET_BN = "conv1_bn, conv2_bn, dense1_bn, dense2_bn"  # LeNet's BN layers, BN before

BROKEN_ADVICE = (
    "The moving averages are never updated or are updated wrongly (notebook 004's update, "
    "model.bn.fault: mxnet_moving_average; frozen statistics; a moving variance initialised "
    "to 0 and never updated). Fix the update: model.bn.fault: null and model.bn.behaviour: "
    "standard (moving = momentum * moving + (1 - momentum) * batch, for the mean and the "
    "variance), model.bn.moving_variance_initializer: ones; or recompute the statistics "
    "before evaluation with train.precise_bn: N.")
LAG_ADVICE = (
    "Lower model.bn.momentum (0.9 needs ~30 steps, 0.99 ~300), train longer, or set "
    "train.precise_bn: N to recompute the moving statistics from N training examples before "
    "evaluation.")
BATCH_STATS_ADVICE = (
    "Use the moving statistics at inference: model.bn.behaviour: standard (a custom layer "
    "must pass training=False when predicting), so a prediction does not depend on the "
    "other examples in its batch, and a batch of one works.")
SMALL_BATCH_ADVICE = (
    "Use {}: the mean and variance of so few examples are noisy estimates, so training "
    "normalizes differently from inference and the gradients are noisy. Where the batch "
    "cannot grow: model.bn.kind: group (or layer) normalizes each example on its own, "
    "without the batch (Wu & He 2018); model.bn.kind: renorm keeps batch norm but corrects "
    "it toward the moving statistics (Ioffe 2017).")
BIAS_ADVICE = (
    "Set {}: BN subtracts the batch mean, so a bias before it has no effect on the output "
    "and gets no useful gradient; BN's beta takes its role.")
SATURATED_ADVICE = (
    "Put BN before the activation (model.bn.placement: before) so its input stays near zero "
    "mean and unit variance; or lower optimizer.learning_rate; or use an init scaled for "
    "the activation (model.init: glorot_uniform for sigmoid/tanh). Saturated units pass "
    "almost no gradient.")
SATURATED = "activation inputs in the flat tails: "


def epochs(n, **values):
    return [{**GOOD, **values} for _ in range(n)]


def found(path):
    """The findings of a run folder as (id, severity, evidence, advice), in order."""
    return [(f.id, f.severity, f.evidence, f.advice) for f in doctor.diagnose(path)]


def run_of(tmp_path, config=None, rows=(), summary=None, status="completed"):
    """A CheckedRun as the checks read it, from these parts (no files but `tmp_path`)."""
    return CheckedRun(tmp_path, summary or {}, status, config or {}, list(rows))


def length(momentum, needed, trained, done):
    return (f"BN momentum {momentum} needs ~{needed} steps (ceil(3 / (1 - momentum))) for "
            f"the initial moving statistics to fade; the run trained {trained} ({done} "
            "epoch(s))")


def chance(acc, batch):
    return (f"test_acc {acc} with the moving statistics (chance 0.1) but {batch} with batch "
            "statistics (test_acc_batchstats)")


def band(step, layer, p15, p50, p85, unit="all"):
    return {"step": step, "layer": layer, "unit": unit, "p15": p15, "p50": p50, "p85": p85}


# ---------------------------------------------------------------- what a run holds


def test_run_get_follows_a_dotted_key_and_falls_back_to_the_default(tmp_path):
    run = run_of(tmp_path, config={"a": {"b": 1, "unset": None}, "leaf": 5})
    assert run.get("a.b") == 1
    assert run.get("a.missing", 7) == 7
    assert run.get("a.unset", 7) == 7  # null reads as unset
    assert run.get("a.unset") is None
    assert run.get("leaf.deeper", 7) == 7  # a number has no keys
    assert run.get("a.b.c", 7) == 7
    assert run.get("nowhere.at.all") is None


def test_run_last_reads_the_last_row_else_the_summary_final(tmp_path):
    final = {"test_acc": 0.5, "train_acc": 0.6}
    rows = [{"test_acc": 0.1, "train_acc": 0.3}, {"test_acc": 0.2, "train_acc": float("nan")}]
    with_rows = run_of(tmp_path, rows=rows, summary={"final": final})
    assert with_rows.last("test_acc") == 0.2
    assert with_rows.last("train_acc") is None  # the last row's blank, not the summary's
    assert with_rows.last("val_acc") is None
    without_rows = run_of(tmp_path, summary={"final": final})
    assert without_rows.last("test_acc") == 0.5
    assert without_rows.last("train_acc") == 0.6
    assert run_of(tmp_path, summary={"final": None}).last("test_acc") is None
    assert run_of(tmp_path).last("test_acc") is None


def test_a_run_without_metrics_rows_is_judged_by_its_summary_final(tmp_path):
    path = fake_run_rows(tmp_path, [], train_size=TRAIN,
                         summary={"epochs_done": 3,
                                  "final": {"test_acc": 0.1, "test_acc_batchstats": 0.6}})
    assert found(path) == [("moving_stats_broken", "error",
                            f"{chance('0.100', '0.600')}; {length(0.9, 30, '60 steps', 3)}",
                            BROKEN_ADVICE)]


# ---------------------------------------------------------------- the helpers


def test_momentum_is_the_slowest_bn_layers_and_0_9_without_bn(tmp_path):
    no_bn = run_of(tmp_path, config={"model": {"bn": {"placement": "none"}}})
    assert checks._momentum(no_bn) == 0.9
    layers = [{"type": "flatten"}, {"type": "bn", "momentum": 0.5},
              {"type": "dense", "units": 32}, {"type": "bn", "momentum": 0.99},
              {"type": "bn"}, {"type": "dense", "units": 10}]
    listed = run_of(tmp_path, config={"model": {"arch": "layers", "layers": layers,
                                                "bn": {"momentum": 0.6}}})
    assert checks._momentum(listed) == 0.99
    assert checks._momentum(run_of(tmp_path, config={"model": {"bn": {"momentum": 0.7}}})) == 0.7


@pytest.mark.parametrize("momentum,steps", [
    (0.9, 30), (0.99, 300), (0.999, 3000), (0.0, 3), (0.5, 6),
    (0.64, 9),  # 8.33...: rounded up
    (0.900000001, 30),  # 30.0000003: float noise below 1e-6 is no extra step
])
def test_steps_needed(momentum, steps):
    assert checks._steps_needed(momentum) == steps


@pytest.mark.parametrize("count,text", [
    (1, "bn1"),
    (2, "bn1, bn2"),
    (6, "bn1, bn2, bn3, bn4, bn5, bn6"),
    (7, "bn1, bn2, bn3, bn4, bn5, bn6 and 1 more"),
    (9, "bn1, bn2, bn3, bn4, bn5, bn6 and 3 more"),
])
def test_bn_names_lists_six_then_counts(count, text):
    assert checks._bn_names([{"name": f"bn{i}"} for i in range(1, count + 1)]) == text


@pytest.mark.parametrize("low,high,share", [
    (-1.0, 1.0, 0.0), (5.0, 7.0, 1.0), (-7.0, -5.0, 1.0), (3.0, 5.0, 0.5), (-6.0, -2.0, 0.5),
    (-6.0, 6.0, 1 / 3), (2.0, 6.0, 0.5), (-4.0, 4.0, 0.0),
    (5.0, 5.0, 1.0), (1.0, 1.0, 0.0), (4.0, 4.0, 0.0), (-4.5, -4.5, 1.0),  # zero width
    (6.0, 5.0, 1.0), (3.0, 2.0, 0.0),  # an inverted band: by its low end
])
def test_share_beyond(low, high, share):
    assert checks._share_beyond(low, high, 4.0) == pytest.approx(share)


@pytest.mark.parametrize("layer,model_use_bias,expected", [
    ({}, None, True),  # Keras' default: a bias
    ({"use_bias": True}, False, True),
    ({"use_bias": False}, True, False),
    ({"use_bias": None}, True, True),  # unset: model.use_bias decides
    ({"use_bias": None}, False, False),
    ({"use_bias": None}, "auto", False),  # auto drops it before BN
    ({"use_bias": None}, None, False),  # model.use_bias unset: auto
])
def test_has_bias(tmp_path, layer, model_use_bias, expected):
    config = {"model": {"use_bias": model_use_bias}} if model_use_bias is not None else {}
    assert checks._has_bias(run_of(tmp_path, config=config), layer) is expected


def test_init_name_and_g():
    assert checks._init_name({"name": "constant", "value": 0.5}) == "constant"
    assert checks._init_name("zeros") == "zeros"
    assert checks._init_name(None) is None
    assert checks._g(None) == "?"
    assert checks._g(1.0e6) == "1e+06"
    assert checks._g(0.05) == "0.05"


# ---------------------------------------------------------------- diverged


def test_diverged_with_bn_says_where_and_that_bn_is_there_already(tmp_path):
    path = fake_run_rows(tmp_path, [{"train_loss": 1.0}] * 3, status="diverged",
                         optimizer__name="adam", optimizer__learning_rate=0.5,
                         summary={"diverged_at": {"epoch": 4, "step": 7}})
    assert found(path) == [(
        "diverged", "error",
        "the training loss became NaN or infinite at epoch 4, step 7 of that epoch, after 3 "
        "finished epoch(s); optimizer adam, learning rate 0.5; the model has BN",
        "Lower optimizer.learning_rate (e.g. 0.05); the model has BN already, so the rate is "
        "too high even for it (d2l's BN-LeNet trains with SGD at 1.0).")]


def test_diverged_without_bn_advises_bn(tmp_path):
    path = fake_run_rows(tmp_path, [], status="diverged", model__bn__placement="none",
                         optimizer__learning_rate=1.0e6)
    assert found(path) == [(
        "diverged", "error",
        "the training loss became NaN or infinite during training, after 0 finished "
        "epoch(s); optimizer sgd, learning rate 1e+06; the model has no BN",
        "Lower optimizer.learning_rate (e.g. 100000), or add BN (model.bn.placement: before): "
        "it keeps each layer's inputs normalized, so the same network trains at much higher "
        "rates.")]


def test_diverged_with_no_optimizer_settings_recorded(tmp_path):
    # a config without optimizer keys: sgd by default, the rate unknown, no example rate
    run = run_of(tmp_path, config={"data": {"batch_size": 50}}, status="diverged",
                 summary={"epochs_done": 2})
    (finding,) = checks.check_diverged(run)
    assert (finding.run, finding.id, finding.severity) == (str(tmp_path), "diverged", "error")
    assert finding.evidence == (
        "the training loss became NaN or infinite during training, after 2 finished "
        "epoch(s); optimizer sgd, learning rate ?; the model has BN")
    assert finding.advice == (
        "Lower optimizer.learning_rate; the model has BN already, so the rate is too high "
        "even for it (d2l's BN-LeNet trains with SGD at 1.0).")


@pytest.mark.parametrize("status", ["completed", "interrupted", "failed"])
def test_only_a_diverged_status_is_diverged(tmp_path, status):
    run = run_of(tmp_path, status=status, summary={"diverged_at": {"epoch": 1, "step": 2}})
    assert checks.check_diverged(run) == []


# ---------------------------------------------------------------- moving statistics


def test_frozen_moving_stats_are_broken_even_in_a_short_run(tmp_path):
    path = fake_run_rows(tmp_path, epochs(1, test_acc=0.1, test_acc_batchstats=0.6),
                         train_size=TRAIN, model__bn__behaviour="frozen_moving_stats")
    assert found(path) == [(
        "moving_stats_broken", "error",
        f"{chance('0.100', '0.600')}; {length(0.9, 30, '20 steps', 1)}; config: behaviour "
        f"frozen_moving_stats ({PRESET_BN})",
        BROKEN_ADVICE)]


def test_broken_names_each_cause_with_its_layers_and_the_variance_inits(tmp_path):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 32, "use_bias": False},
              {"type": "bn", "name": "first", "fault": "mxnet_moving_average",
               "moving_variance_initializer": "zeros"},
              {"type": "activation", "activation": "relu"},
              {"type": "dense", "units": 32, "use_bias": False},
              {"type": "bn", "name": "second", "behaviour": "frozen_moving_stats",
               "moving_variance_initializer": {"name": "constant", "value": 0.5}},
              {"type": "activation", "activation": "relu"}, {"type": "dense", "units": 10}]
    path = fake_run_rows(tmp_path, epochs(3, test_acc=0.1, test_acc_batchstats=0.6),
                         train_size=TRAIN, model__arch="layers", model__layers=layers,
                         model__bn__impl="scratch")
    assert found(path) == [(
        "moving_stats_broken", "error",
        f"{chance('0.100', '0.600')}; {length(0.9, 30, '60 steps', 3)}; config: fault "
        "mxnet_moving_average (first), behaviour frozen_moving_stats (second); moving "
        "variance initialised with constant, zeros",
        BROKEN_ADVICE)]


@pytest.mark.parametrize("keys", [{}, {"model__bn__moving_variance_initializer": "ones"}])
def test_broken_with_an_unknown_step_count_and_the_usual_variance_init(tmp_path, keys):
    # no data.train in summary.json: the run's length cannot excuse it; ones (or unset,
    # which is ones) is not worth a mention
    path = fake_run_rows(tmp_path, epochs(3, test_acc=0.1, test_acc_batchstats=0.6), **keys)
    assert found(path) == [(
        "moving_stats_broken", "error",
        f"{chance('0.100', '0.600')}; "
        f"{length(0.9, 30, 'an unknown number of steps', 3)}",
        BROKEN_ADVICE)]


@pytest.mark.parametrize("train_size,expected", [
    (600, "broken"),  # 30 steps: exactly what momentum 0.9 needs
    (580, "lag"),  # 29 steps: too short, so the run's length explains it
])
def test_too_short_at_its_edge(tmp_path, train_size, expected):
    path = fake_run_rows(tmp_path, epochs(1, test_acc=0.1, test_acc_batchstats=0.6),
                         train_size=train_size, data__batch_size=20)
    steps = train_size // 20
    evidence = f"{chance('0.100', '0.600')}; {length(0.9, 30, f'{steps} steps', 1)}"
    if expected == "broken":
        assert found(path) == [("moving_stats_broken", "error", evidence, BROKEN_ADVICE)]
    else:
        assert found(path) == [("moving_stats_lag", "warning", evidence, LAG_ADVICE)]


@pytest.mark.parametrize("train_acc,expected", [
    (0.4, ["moving_stats_broken"]),  # chance + 0.3: training works
    (0.39, []),
    (0.2, []),
    (None, []),  # no accuracy at all to show that anything works
])
def test_broken_without_a_batch_stats_column_needs_training_to_work(tmp_path, train_acc,
                                                                    expected):
    row = {"test_acc": 0.15} if train_acc is None else {"test_acc": 0.15, "train_acc": train_acc}
    path = fake_run_rows(tmp_path, [row] * 3, train_size=TRAIN)
    assert [f.id for f in doctor.diagnose(path)] == expected
    if expected:
        assert doctor.diagnose(path)[0].evidence == (
            "test_acc 0.150 with the moving statistics (chance 0.1) while train_acc is "
            f"0.400; {length(0.9, 30, '60 steps', 3)}")


def test_lag_at_chance_in_a_short_run(tmp_path):
    path = fake_run_rows(tmp_path, epochs(1, test_acc=0.1, test_acc_batchstats=0.578),
                         train_size=TRAIN, model__bn__momentum=0.99)
    assert found(path) == [(
        "moving_stats_lag", "warning",
        f"{chance('0.100', '0.578')}; {length(0.99, 300, '20 steps', 1)}", LAG_ADVICE)]


GAP = ("test accuracy 0.110 higher with batch statistics (0.810) than with the moving "
       "statistics (0.700); ")
LONGER = (": longer than the momentum needs, so the moving statistics trail weights that "
          "still change fast")


@pytest.mark.parametrize("n,keys,evidence", [
    (2, {"train_size": TRAIN, "model__bn__momentum": 0.99},
     GAP + length(0.99, 300, "40 steps", 2)),
    (3, {"train_size": TRAIN}, GAP + length(0.9, 30, "60 steps", 3) + LONGER),
    (3, {}, GAP + length(0.9, 30, "an unknown number of steps", 3)),
])
def test_lag_from_the_gap_says_whether_the_run_was_long_enough(tmp_path, n, keys, evidence):
    path = fake_run_rows(tmp_path, epochs(n, test_acc=0.70, test_acc_batchstats=0.81), **keys)
    assert found(path) == [("moving_stats_lag", "warning", evidence, LAG_ADVICE)]


@pytest.mark.parametrize("batch,lag", [
    (0.85, False), (0.8500004, False),  # GAP itself, up to float noise: within it
    (0.850001, True), (0.86, True),
])
def test_the_gap_threshold(tmp_path, batch, lag):
    run = run_of(tmp_path, config={"data": {"batch_size": 50}},
                 rows=[{"test_acc": 0.8, "test_acc_batchstats": batch}] * 3,
                 summary={"epochs_done": 3, "data": {"train": TRAIN}})
    found_ = checks.check_moving_stats_lag(run)
    assert [(f.id, f.severity) for f in found_] == ([("moving_stats_lag", "warning")] if lag
                                                    else [])


def test_unmeasured_gap_of_a_short_run_is_info(tmp_path):
    path = fake_run_rows(tmp_path, [{"train_acc": 0.5, "test_acc": 0.45}],
                         train_size=TRAIN, model__bn__momentum=0.99)
    assert found(path) == [(
        "moving_stats_lag", "info",
        f"{length(0.99, 300, '20 steps', 1)}; the gap itself was not measured "
        "(diagnostics.batch_stats_eval: true measures it)",
        LAG_ADVICE)]


@pytest.mark.parametrize("rows,keys", [
    ([{"train_acc": 0.5, "test_acc": 0.45}] * 2, {"train_size": TRAIN}),  # long enough
    ([{"train_acc": 0.5, "test_acc": 0.45}], {}),  # length unknown
    ([{"train_acc": 0.5}], {"train_size": TRAIN, "model__bn__momentum": 0.99}),  # no test_acc
])
def test_no_info_without_a_short_run_or_an_accuracy(tmp_path, rows, keys):
    assert found(fake_run_rows(tmp_path, rows, **keys)) == []


# ---------------------------------------------------------------- the config's BN


def test_batch_stats_at_inference_full_text(tmp_path):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN,
                         model__bn__behaviour="batch_stats_at_inference")
    assert found(path) == [(
        "batch_stats_at_inference", "error",
        f"behaviour batch_stats_at_inference on {PRESET_BN}: at inference each example is "
        "normalized with its batch's mean and variance; test_acc 0.860 holds only for test "
        "batches of 50 mixed examples",
        BATCH_STATS_ADVICE)]


@pytest.mark.parametrize("config,rows,tail", [
    ({}, [{"test_acc": 0.9}], "; test_acc 0.900 holds only for test batches of ? mixed "
                              "examples"),
    ({"data": {"batch_size": 64}}, [{"test_acc": 0.9}],
     "; test_acc 0.900 holds only for test batches of 64 mixed examples"),
    ({"data": {"batch_size": 64}}, [{"train_acc": 0.9}], ""),  # no test_acc: no claim
])
def test_batch_stats_at_inference_batch_size_and_accuracy(tmp_path, config, rows, tail):
    config = {**config, "model": {"bn": {"behaviour": "batch_stats_at_inference"}}}
    (finding,) = checks.check_batch_stats_at_inference(run_of(tmp_path, config, rows))
    assert finding.evidence == (
        f"behaviour batch_stats_at_inference on {PRESET_BN}: at inference each example is "
        f"normalized with its batch's mean and variance{tail}")
    assert finding.advice == BATCH_STATS_ADVICE


GHOST_FIX = "a larger model.bn.virtual_batch_size (or null)"
SYNC_FIX = "model.bn.synchronized: true (BN over the global batch) or a larger batch"
BATCH_FIX = "a larger data.batch_size (>= 32)"


@pytest.mark.parametrize("keys,size,how,fix", [
    ({"data__batch_size": 8}, 8, "data.batch_size 8", BATCH_FIX),
    ({"data__batch_size": 15}, 15, "data.batch_size 15", BATCH_FIX),
    ({"model__bn__impl": "scratch", "model__bn__virtual_batch_size": 4}, 4,
     "model.bn.virtual_batch_size 4 (ghost batches)", GHOST_FIX),
    # ghost batches larger than the batch: the batch is what is small
    ({"data__batch_size": 8, "model__bn__impl": "scratch", "model__bn__virtual_batch_size": 32},
     8, "data.batch_size 8", BATCH_FIX),
    # ghost batches as large as the batch: the batch is what is small
    ({"data__batch_size": 8, "model__bn__impl": "scratch", "model__bn__virtual_batch_size": 8},
     8, "data.batch_size 8", BATCH_FIX),
    # ghost batches within each replica's slice: the smaller of the two
    ({"data__batch_size": 24, "train__strategy": "mirrored", "model__bn__impl": "scratch",
      "model__bn__virtual_batch_size": 16}, 12,
     "data.batch_size 24 split over 2 replicas with model.bn.synchronized false", SYNC_FIX),
    ({"data__batch_size": 64, "train__strategy": "mirrored", "model__bn__impl": "scratch",
      "model__bn__virtual_batch_size": 8}, 8, "model.bn.virtual_batch_size 8 (ghost batches)",
     GHOST_FIX),
    ({"data__batch_size": 48, "train__strategy": "mirrored", "train__replicas": 4}, 12,
     "data.batch_size 48 split over 4 replicas with model.bn.synchronized false", SYNC_FIX),
    ({"data__batch_size": 24, "train__strategy": "mirrored"}, 12,
     "data.batch_size 24 split over 2 replicas with model.bn.synchronized false", SYNC_FIX),
])
def test_small_batch_full_text(tmp_path, keys, size, how, fix):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, **keys)
    assert found(path) == [(
        "small_batch", "warning",
        f"BN normalizes over {size} examples at a time ({how}); fewer than 16",
        SMALL_BATCH_ADVICE.format(fix))]


@pytest.mark.parametrize("keys", [
    {"data__batch_size": 16},  # SMALL_BATCH itself is enough
    {"data__batch_size": 32, "train__strategy": "mirrored"},  # 16 a replica
    {"data__batch_size": 24, "train__strategy": "mirrored", "model__bn__synchronized": True},
    {"model__bn__impl": "scratch", "model__bn__virtual_batch_size": 16},
])
def test_no_small_batch_at_or_above_16(tmp_path, keys):
    assert found(fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, **keys)) == []


@pytest.mark.parametrize("config,size,replicas", [
    ({"data": {"batch_size": 24}, "train": {"strategy": "mirrored"}}, 12, 2),
    ({"data": {"batch_size": 48}, "train": {"strategy": "mirrored", "replicas": 4}}, 12, 4),
])
def test_small_batch_of_a_mirrored_run_whose_config_leaves_synchronized_unset(
        tmp_path, config, size, replicas):
    (finding,) = checks.check_small_batch(run_of(tmp_path, config))
    assert finding.evidence == (
        f"BN normalizes over {size} examples at a time (data.batch_size "
        f"{config['data']['batch_size']} split over {replicas} replicas with "
        "model.bn.synchronized false); fewer than 16")


def test_no_small_batch_without_a_recorded_batch_size(tmp_path):
    assert checks.check_small_batch(run_of(tmp_path, {"data": {"batch_size": None}})) == []


def test_bias_before_bn_in_a_preset_full_text(tmp_path):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__use_bias=True)
    assert found(path) == [(
        "bias_before_bn", "info",
        "226 bias parameters that BN cancels: conv1 (6 biases) -> conv1_bn, conv2 (16 "
        "biases) -> conv2_bn, dense1 (120 biases) -> dense1_bn, dense2 (84 biases) -> "
        "dense2_bn",
        BIAS_ADVICE.format("model.use_bias: auto (or false)"))]


def test_bias_before_bn_in_a_layer_list_after_a_layer_with_its_own_activation(tmp_path):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"},
              {"type": "dense", "units": 20, "activation": "linear"}, {"type": "bn"},
              {"type": "activation", "activation": "relu"},
              {"type": "dense", "units": 24}, {"type": "bn"}, {"type": "dense", "units": 10}]
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__arch="layers",
                         model__layers=layers)
    assert found(path) == [(
        "bias_before_bn", "info",
        "44 bias parameters that BN cancels: dense2 (20 biases) -> bn1, dense3 (24 biases) "
        "-> bn2",
        BIAS_ADVICE.format("use_bias: false on these layers"))]


def test_bias_before_bn_across_pooling_in_a_layer_list(tmp_path):
    """Pooling between a layer and its BN keeps a per-channel bias constant: still
    cancelled (the second conv; the first has its own activation)."""
    layers = [{"type": "conv", "filters": 6, "kernel_size": 5, "activation": "relu"},
              {"type": "conv", "filters": 16, "kernel_size": 5},
              {"type": "max_pool", "pool_size": 2}, {"type": "avg_pool", "pool_size": 2},
              {"type": "bn"}, {"type": "flatten"}, {"type": "dense", "units": 10}]
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__arch="layers",
                         model__layers=layers)
    assert found(path) == [(
        "bias_before_bn", "info", "16 bias parameters that BN cancels: conv2 (16 biases) -> bn1",
        BIAS_ADVICE.format("use_bias: false on these layers"))]


# ---------------------------------------------------------------- saturated activations


def test_saturated_reads_the_last_step_skipping_other_functions_and_calm_layers(tmp_path):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 32},
              {"type": "activation", "activation": "relu", "name": "rect"},
              {"type": "dense", "units": 32},
              {"type": "activation", "activation": "sigmoid", "name": "gate"},
              {"type": "dense", "units": 10}]
    rows = [band(0, "rect", 1, 2, 3), band(0, "gate", -1, 0, 1),
            band(0, "extra_tanh", -0.5, 0, 0.5),
            band(200, "rect", 50, 60, 70),  # relu: never saturated
            band(200, "gate", -1, 0.2, 1),  # calm
            band(200, "gate", 9, 10, 11, unit="0"),  # one unit: not read
            band(200, "extra_tanh", 2, 3, 4)]  # not listed: tanh by its name; median > 2.5
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, activations=rows,
                         model__arch="layers", model__layers=layers)
    assert found(path) == [(
        "saturated_activations", "warning",
        SATURATED + "extra_tanh (tanh, saturates beyond |x| > 2.5) at step 200: p15 2.00, "
        "p50 3.00, p85 4.00 (at step 0: p15 -0.50, p50 0.00, p85 0.50)",
        SATURATED_ADVICE)]


def test_a_band_not_recorded_nan_or_blank_is_not_saturation(tmp_path):
    """abs(NaN) <= limit is False: a blank or NaN percentile read as saturated."""
    nan = math.nan
    rows = [band(100, "dense1_sigmoid", nan, 0, 1), band(100, "dense2_sigmoid", -1, nan, 1),
            band(100, "dense3_sigmoid", -1, 0, math.inf)]
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, activations=rows,
                         model__arch="mlp", model__activation="sigmoid",
                         model__hidden=[32, 32, 32], model__bn__placement="none")
    assert found(path) == []
    text = (path / "activations.csv").read_text().replace("nan", "")  # blank cells too
    (path / "activations.csv").write_text(text)
    assert found(path) == []


def test_saturated_thresholds_at_their_edges_and_several_layers(tmp_path):
    rows = [band(0, "dense1_sigmoid", -1, 0, 1), band(0, "dense2_sigmoid", -1.5, 0, 1.5),
            band(0, "dense3_sigmoid", -2, 0, 2),
            band(100, "dense1_sigmoid", 3.0, 4.0, 4.5),  # median at the limit, 1/3 beyond
            band(100, "dense2_sigmoid", 3.0, 3.5, 5.0),  # half the band beyond: saturated
            band(100, "dense3_sigmoid", -4.2, -4.01, -2.0)]  # median beyond
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, activations=rows,
                         model__arch="mlp", model__activation="sigmoid",
                         model__hidden=[32, 32, 32], model__bn__placement="none")
    assert found(path) == [(
        "saturated_activations", "warning",
        SATURATED + "dense2_sigmoid (sigmoid, saturates beyond |x| > 4) at step 100: p15 "
        "3.00, p50 3.50, p85 5.00 (at step 0: p15 -1.50, p50 0.00, p85 1.50); dense3_sigmoid "
        "(sigmoid, saturates beyond |x| > 4) at step 100: p15 -4.20, p50 -4.01, p85 -2.00 "
        "(at step 0: p15 -2.00, p50 0.00, p85 2.00)",
        SATURATED_ADVICE)]


def test_saturated_with_one_step_or_a_layer_first_seen_later_has_no_start(tmp_path):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 32},
              {"type": "activation", "activation": "tanh", "name": "squash"},
              {"type": "dense", "units": 10}]
    one = fake_run_rows(tmp_path / "one", epochs(3), train_size=TRAIN, model__arch="layers",
                        model__layers=layers, activations=[band(100, "squash", 0, 2.7, 3)])
    later = fake_run_rows(tmp_path / "later", epochs(3), train_size=TRAIN, model__arch="layers",
                          model__layers=layers,
                          activations=[band(0, "other", 0, 0, 0),
                                       band(100, "squash", 0, 2.7, 3)])
    text = SATURATED + ("squash (tanh, saturates beyond |x| > 2.5) at step 100: p15 0.00, "
                        "p50 2.70, p85 3.00")
    assert found(one) == [("saturated_activations", "warning", text, SATURATED_ADVICE)]
    assert found(later) == [("saturated_activations", "warning", text, SATURATED_ADVICE)]


def test_a_layer_list_with_one_activation_function_names_every_recorded_layer(tmp_path):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 32},
              {"type": "activation", "activation": "tanh", "name": "squash"},
              {"type": "dense", "units": 10}]
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__arch="layers",
                         model__layers=layers, activations=[band(0, "probe", 2.6, 3, 3.5)])
    assert found(path) == [(
        "saturated_activations", "warning",
        SATURATED + "probe (tanh, saturates beyond |x| > 2.5) at step 0: p15 2.60, p50 3.00, "
        "p85 3.50",
        SATURATED_ADVICE)]


def test_activation_of(tmp_path):
    two = [{"type": "flatten"}, {"type": "dense", "units": 32},
           {"type": "activation", "activation": "relu", "name": "rect"},
           {"type": "dense", "units": 32},
           {"type": "activation", "activation": "sigmoid", "name": "gate"},
           {"type": "dense", "units": 10}]
    run = run_of(tmp_path, {"model": {"arch": "layers", "layers": two}})
    assert checks._activation_of(run, "rect") == "relu"
    assert checks._activation_of(run, "gate") == "sigmoid"
    assert checks._activation_of(run, "x_tanh") == "tanh"
    assert checks._activation_of(run, "x_sigmoid") == "sigmoid"
    assert checks._activation_of(run, "probe") is None  # two functions: which one?
    none = [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "tanh"},
            {"type": "dense", "units": 10}]
    assert checks._activation_of(run_of(tmp_path, {"model": {"arch": "layers",
                                                             "layers": none}}), "dense1") is None
    preset = run_of(tmp_path, {"model": {"arch": "mlp", "activation": "tanh"}})
    assert checks._activation_of(preset, "dense1_tanh") == "tanh"
    assert checks._activation_of(preset, "probe") == "tanh"


def test_no_saturation_read_from_a_layer_with_its_activation_inside(tmp_path):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "sigmoid"},
              {"type": "dense", "units": 10}]
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__arch="layers",
                         model__layers=layers, activations=[band(0, "dense1", 5, 6, 7)])
    assert found(path) == []


def test_an_activations_file_without_the_needed_columns_is_ignored(tmp_path):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__arch="mlp",
                         model__bn__placement="none")
    runs.append_csv(path / "activations.csv", ["step", "layer", "p50"],
                    [{"step": 0, "layer": "dense1_sigmoid", "p50": 9.0}])
    assert found(path) == []
    assert checks.check_saturated_activations(run_of(path)) == []


def test_an_activations_file_without_whole_layer_rows_is_ignored(tmp_path):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__arch="mlp",
                         model__bn__placement="none",
                         activations=[band(0, "dense1_sigmoid", 8, 9, 10, unit="0")])
    assert found(path) == []


def test_a_run_without_a_recorded_config_gets_no_bn_checks(tmp_path):
    """No config in summary.json and no config.yaml: the model is unknown, not the default
    BN-LeNet, so no BN finding (the run reads as having no layers)."""
    run = run_of(tmp_path, rows=epochs(3, test_acc=0.1, test_acc_batchstats=0.8))
    assert run.layers == [] and run.bn_layers == []
    assert not checks.has_bn(run)


# ---------------------------------------------------------------- damaged run folders


def edit_summary(path, **fields):
    """Replace summary.json fields with raw JSON text (numbers beyond what JSON parsers
    hold as floats among them)."""
    summary = json.loads((path / "summary.json").read_text())
    text = json.dumps({k: v for k, v in summary.items() if k not in fields})
    extra = ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items())
    (path / "summary.json").write_text(text[:-1] + ", " + extra + "}")


BIG = "1" + "0" * 400  # beyond float range: math.isfinite and float() raise


def test_diverged_where_the_summary_says_nothing_readable(tmp_path):
    path = fake_run_rows(tmp_path, epochs(2), status="diverged", model__bn__placement="none")
    config = json.loads((path / "summary.json").read_text())["config"]
    config["optimizer"]["learning_rate"] = "LR"
    edit_summary(path, diverged_at='"x"', config=json.dumps(config).replace('"LR"', BIG))
    (finding,) = doctor.diagnose(path)
    assert finding.evidence == (
        "the training loss became NaN or infinite during training, after 2 finished "
        "epoch(s); optimizer sgd, learning rate ?; the model has no BN")


@pytest.mark.parametrize("metrics", [b"epoch,test_acc\n", bytes(range(256)) * 12,
                                     b"epoch,test_acc\n1," + b"1" * 200_000 + b"\n"])
def test_a_final_beyond_range_or_a_metrics_csv_of_noise_reads_as_absent(tmp_path, metrics):
    path = fake_run_rows(tmp_path, epochs(1, test_acc=0.1, train_acc=0.9, test_acc_batchstats=0.9),
                         train_size=TRAIN)
    final = json.loads((path / "summary.json").read_text())["final"]
    edit_summary(path, final=json.dumps({**final, "test_acc": "T"}).replace('"T"', BIG))
    (path / "metrics.csv").write_bytes(metrics)
    warnings = []
    assert doctor.diagnose(path, warnings) == []  # no test_acc: nothing at chance
    assert warnings == [f"{path}: read as absent (not a value a run holds: a number out of "
                        "range, a date, a wrong type): summary.json final.test_acc"]


def test_a_folder_of_runs_none_readable_says_what_was_skipped(tmp_path):
    for seed in (0, 1):
        path = fake_run_rows(tmp_path, epochs(1), seed=seed)
        edit_summary(path, config="{}")
        (path / "config.yaml").unlink()
    first = sorted(p for p in tmp_path.iterdir())[0]
    with pytest.raises(BadInput) as e:
        doctor.diagnose_each(tmp_path)
    assert str(e.value) == (f"{tmp_path}: no readable run folder here: 2 folder(s) skipped, "
                            f"the first: {first}: no readable config in summary.json or "
                            "config.yaml")


# ---------------------------------------------------------------- degenerate batches


DEGENERATE = {"train_acc": 0.101, "test_acc": 0.1, "test_acc_batchstats": 0.35}


@pytest.mark.parametrize("keys, how, layers", [
    ({"data__batch_size": 1, "model__arch": "mlp"}, "data.batch_size 1",
     "dense1_bn, dense2_bn"),
    ({"model__bn__impl": "scratch", "model__bn__virtual_batch_size": 1},
     "model.bn.virtual_batch_size 1 (ghost batches)", "dense1_bn, dense2_bn"),
    ({"data__batch_size": 2, "train__strategy": "mirrored"},
     "data.batch_size 2 split over 2 replicas with model.bn.synchronized false",
     "dense1_bn, dense2_bn"),
])
def test_one_example_per_normalization_on_vectors_is_degenerate_and_nothing_else(
        tmp_path, keys, how, layers):
    """A BN that sees one example at a time on vectors: variance 0, train accuracy at
    chance. Not small_batch, not the moving statistics' lag or breakage."""
    path = fake_run_rows(tmp_path, [DEGENERATE] * 3, train_size=TRAIN, **keys)
    (finding,) = found(path)
    assert finding[:2] == ("degenerate_batch", "error")
    assert finding[2] == (
        f"BN normalizes over 1 example at a time ({how}); on vectors ({layers}) each "
        "feature's batch mean is the example itself and its variance 0, so these layers "
        "output beta whatever their input; train_acc 0.101, test_acc 0.100 (chance 0.1)")
    assert "model.bn.kind: layer" in finding[3]


def test_one_example_per_normalization_over_positions_only_is_a_small_batch(tmp_path):
    """A conv BN averages over the positions of its one example: noisy, not degenerate."""
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, data__batch_size=1,
                         model__arch="layers", model__layers=[
                             {"type": "conv", "filters": 4, "kernel_size": 3, "use_bias": False},
                             {"type": "bn"}, {"type": "flatten"}, {"type": "dense", "units": 10}])
    assert [f[0] for f in found(path)] == ["small_batch"]


# ---------------------------------------------------------------- dropout before BN


def test_dropout_before_bn_with_a_gap_is_a_warning_and_no_lag(tmp_path):
    path = fake_run_rows(tmp_path, epochs(3, test_acc=0.78, test_acc_batchstats=0.86),
                         train_size=TRAIN, model__arch="mlp",
                         model__dropout={"rate": 0.5, "placement": "before_bn"})
    (finding,) = found(path)
    assert finding[:2] == ("dropout_before_bn", "warning")
    assert finding[2] == (
        "dropout dense1_dropout (rate 0.5) before dense2_bn: in training dropout changes the "
        "variance of what these BN layers see; at inference it is off, so their moving "
        "variance no longer fits; test accuracy 0.860 with batch statistics, 0.780 with the "
        "moving ones (gap +0.080)")
    assert "model.dropout.placement: after_bn" in finding[3]


def test_dropout_before_bn_with_no_gap_is_info_and_after_the_last_bn_is_silent(tmp_path):
    small = fake_run_rows(tmp_path / "a", epochs(3), train_size=TRAIN, model__arch="mlp",
                          model__dropout={"rate": 0.5, "placement": "before_bn"})
    assert [f[:2] for f in found(small)] == [("dropout_before_bn", "info")]
    after = fake_run_rows(tmp_path / "b", epochs(3, test_acc=0.78, test_acc_batchstats=0.86),
                          train_size=TRAIN, model__arch="mlp",
                          model__dropout={"rate": 0.5, "placement": "after_bn"})
    assert [f[0] for f in found(after)] == ["moving_stats_lag"]  # no dropout before a BN


# ---------------------------------------------------------------- nothing trains


def test_nothing_trains_names_what_was_frozen(tmp_path):
    rows = [{"train_acc": 0.1, "test_acc": 0.1, "train_loss": 2.3}] * 3
    path = fake_run_rows(tmp_path, rows, train_size=TRAIN, model__bn__placement="none",
                         train__trainable="all_but_norm",
                         summary={"params": {"trainable": 100, "frozen": 5000}})
    (finding,) = found(path)
    assert finding[:3] == ("nothing_trains", "warning",
                           "train_acc stayed at chance (0.1) for all 3 epochs: 0.100 in the "
                           "first, 0.100 in the last; 100 weights train, 5000 are frozen "
                           "(train.trainable: all_but_norm, or layers' trainable: false)")


def test_nothing_trains_is_silent_once_any_epoch_learns_or_a_run_is_one_epoch(tmp_path):
    learns = [{"train_acc": 0.1}, {"train_acc": 0.16}]
    assert found(fake_run_rows(tmp_path / "a", learns, model__bn__placement="none")) == []
    one = [{"train_acc": 0.1}]
    assert found(fake_run_rows(tmp_path / "b", one, model__bn__placement="none")) == []


# ---------------------------------------------------------------- domain shift


def eval_rows(path, rows, epoch=3):
    from bnexp.runs import evals

    for shift, stats, acc in rows:
        evals.append(path, {"evaluated_at": "2026-12-07T00:00:00", "epoch": epoch,
                            "data": "test", "shift": shift, "stats": stats,
                            "batch_size": 50 if stats == "batch" else None,
                            "examples": 300, "loss": 1.0, "acc": acc})


def test_a_gap_on_shifted_data_only_is_domain_shift_not_lag(tmp_path):
    """The case doctor once called moving_stats_lag: clean 0.796 / 0.786 (population /
    test batch), Gaussian noise 0.617 / 0.753."""
    path = fake_run_rows(tmp_path, epochs(3, test_acc=0.796, test_acc_batchstats=0.786),
                         train_size=TRAIN)
    eval_rows(path, [("noise=80", "population", 0.617), ("noise=80", "batch", 0.753),
                     ("noise=80", "adapt", 0.760), ("none", "population", 0.796),
                     ("rotate=90", "population", 0.038), ("rotate=90", "batch", 0.070)])
    (finding,) = found(path)
    assert finding[:3] == (
        "domain_shift", "warning",
        "on noise=80 test data, accuracy 0.617 with the moving statistics, 0.753 with "
        "each test batch's own statistics, 0.760 with statistics recomputed on it (AdaBN); "
        "on the clean test set 0.796 with the moving statistics and 0.786 with the batches' "
        "own")
    assert "bnexp eval RUN --shift noise=80 --stats adapt" in finding[3]


def test_no_domain_shift_where_the_shifted_gap_is_small_or_older_epochs_show_it(tmp_path):
    small = fake_run_rows(tmp_path / "a", epochs(3), train_size=TRAIN)
    eval_rows(small, [("noise=80", "population", 0.70), ("noise=80", "adapt", 0.74)])
    assert found(small) == []
    old = fake_run_rows(tmp_path / "b", epochs(3), train_size=TRAIN)
    eval_rows(old, [("noise=80", "population", 0.60), ("noise=80", "adapt", 0.75)], epoch=1)
    eval_rows(old, [("noise=80", "population", 0.70), ("noise=80", "adapt", 0.72)], epoch=3)
    assert found(old) == []  # the last evaluated epoch counts
