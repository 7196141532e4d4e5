"""The training loop on the synthetic set: steps, modes, metrics, divergence, failure."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow import keras

from bnexp import config, data, runs
from bnexp.model import build as models
from bnexp.training import lifecycle, xla
from bnexp.training import loop as train_loop
from bnexp.training import steps as train_steps
from tests.helpers import Quiet, steps_for, synthetic_config


def test_compiled_step_equals_eager_step():
    cfg = synthetic_config(model={"bn": {"impl": "scratch"}})
    splits = data.load(cfg.data)
    x, y = splits.x_train[:50], splits.y_train[:50]
    losses, weights = [], []
    for compiled in (True, False):
        keras.utils.set_random_seed(0)
        model = models.build(cfg.model, splits.input_shape)
        steps = steps_for(cfg, model, splits.input_shape)
        step = steps.train_step if compiled else steps.train_step_body
        losses.append([float(step(tf.constant(x), tf.constant(y))[0]) for _ in range(3)])
        weights.append([w.numpy() for w in model.weights])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_evaluation_changes_no_variable_and_training_moves_bn_statistics():
    cfg = synthetic_config()
    splits = data.load(cfg.data)
    model = models.build(cfg.model, splits.input_shape)
    steps = steps_for(cfg, model, splits.input_shape)
    before = [w.numpy().copy() for w in model.weights]
    steps.evaluate(splits.x_test, splits.y_test)
    for a, w in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(a, w.numpy())
    steps.train_step(splits.x_train[:50], splits.y_train[:50])
    moving = model.get_layer("conv1_bn").moving_mean.numpy()
    assert not np.allclose(moving, 0.0)


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_fit_learns_and_reports_every_column():
    cfg = synthetic_config(train={"epochs": 3}, diagnostics={"batch_stats_eval": True})
    rows = []
    train_loop.fit(cfg, data.load(cfg.data), rows.append, Quiet())
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert set(runs.EPOCH_COLUMNS) <= set(rows[-1])
    assert rows[-1]["test_acc"] > 0.5 and rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_same_seed_same_metrics():
    cfg = synthetic_config(train={"epochs": 1})
    splits = data.load(cfg.data)
    a, b = [], []
    train_loop.fit(cfg, splits, a.append, Quiet())
    keras.backend.clear_session()
    train_loop.fit(cfg, splits, b.append, Quiet())
    assert a[0]["train_loss"] == pytest.approx(b[0]["train_loss"], rel=1e-5)
    assert a[0]["test_acc"] == b[0]["test_acc"]


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_a_later_run_of_the_same_model_reuses_the_compiled_steps_and_ends_the_same():
    """compiled.py: the second run of a model given the same StepCache takes over the
    first run's traced and compiled steps; its metrics and trained weights equal, bit for
    bit, those of the same run given new steps (seed, learning rate and the optimizer's
    momentum slots reset); fit returns the model it was given, trained."""
    from bnexp.training.compiled import StepCache

    def run(seed, lr, momentum=0.9, cache=None):
        cfg = synthetic_config(seed=seed, optimizer={"learning_rate": lr, "momentum": 0.5},
                               model={"arch": "mlp", "hidden": [32], "bn": {"momentum": momentum}},
                               train={"epochs": 2})
        rows = []
        given, _ = train_loop.new_model(cfg, splits.input_shape)
        steps = []
        real_make = compiled.make_steps
        with pytest.MonkeyPatch.context() as patch:
            for module in (compiled, train_loop):  # the cache's, and fit's without one
                patch.setattr(module, "make_steps", lambda *a: steps.append(1) or real_make(*a))
            model = train_loop.fit(cfg, splits, rows.append, Quiet(), model=given, cache=cache)
        assert model is given
        return (bool(steps), [w.numpy() for w in model.weights],
                [{k: v for k, v in r.items() if "seconds" not in k and "per_sec" not in k}
                 for r in rows])

    from bnexp.training import compiled

    splits = data.load(synthetic_config().data)
    cache = StepCache()
    traced, _, _ = run(1, 0.5, cache=cache)
    assert traced
    traced, reused_weights, reused = run(2, 0.1, cache=cache)
    assert not traced  # the first run's steps: nothing traced again
    traced, _, _ = run(2, 0.1, momentum=0.8, cache=cache)  # momentum is baked into the trace
    assert traced
    traced, fresh_weights, fresh = run(2, 0.1)  # no cache: new steps
    assert traced
    assert reused == fresh
    for a, b in zip(reused_weights, fresh_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_divergence_stops_the_run_with_status_diverged(tmp_path):
    cfg = synthetic_config(model={"arch": "mlp", "activation": "relu", "bn": {"placement": "none"}},
                           optimizer={"learning_rate": 1.0e6}, train={"epochs": 3})
    outcome = lifecycle.run_one(config.RunSpec(cfg), data.load(cfg.data), tmp_path, Quiet())
    summary = runs.read_summary(outcome.path)
    assert outcome.status == summary["status"] == "diverged"
    assert summary["diverged_at"]["epoch"] == 1
    assert summary["epochs_done"] == 0


def test_a_run_that_raises_is_recorded_as_failed(tmp_path, monkeypatch):
    def broken_fit(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(lifecycle, "fit", broken_fit)
    cfg = synthetic_config()
    outcome = lifecycle.run_one(config.RunSpec(cfg), data.load(cfg.data), tmp_path, Quiet())
    summary = runs.read_summary(outcome.path)
    assert summary["status"] == "failed" and summary["error"] == "RuntimeError: boom"
    assert "Traceback" in (outcome.path / "train.log").read_text()


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_a_stop_request_interrupts_the_run_and_handlers_are_restored(tmp_path):
    import signal

    from bnexp.training import stop

    before = signal.getsignal(signal.SIGINT)
    cfg = synthetic_config()
    with stop.handling():
        stop.request(signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):
            lifecycle.run_one(config.RunSpec(cfg), data.load(cfg.data), tmp_path, Quiet())
    assert signal.getsignal(signal.SIGINT) is before and not stop.requested()
    (run,) = list(tmp_path.iterdir())
    summary = runs.read_summary(run)
    assert summary["status"] == "interrupted" and summary["epochs_done"] == 0


def test_batch_chunks_cover_the_epoch_once_in_order():
    perm = np.random.default_rng(0).permutation(1000)
    chunks = train_loop.batch_chunks(perm, 64, 4)
    assert [c.shape for c in chunks] == [(4, 64)] * 3 + [(3, 64), (1, 40)]
    np.testing.assert_array_equal(np.concatenate([c.ravel() for c in chunks]), perm)
    assert train_loop.batch_chunks(perm[:128], 64, 16)[0].shape == (2, 64)


def test_xla_steps_match_plain_steps_within_float_noise():
    cfg = synthetic_config(model={"arch": "mlp", "activation": "relu"})
    splits = data.load(cfg.data)
    chunk = np.arange(150, dtype=np.int32).reshape(3, 50)
    losses = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = models.build(cfg.model, splits.input_shape)
        steps = steps_for(cfg, model, splits.input_shape, jit_compile=jit)
        losses.append([float(steps.train_many(splits.x_train, splits.y_train, chunk[i:i + 1])[0, 0])
                       for i in range(3)])
        assert steps.fallback is None
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_jit_compile_auto_follows_the_measured_choice():
    assert xla.xla_mode(synthetic_config(model={"arch": "mlp"})) is True
    assert xla.xla_mode(synthetic_config(model={"arch": "lenet"})) == "except_conv"
    assert xla.xla_mode(synthetic_config(model={"arch": "lenet"},
                                          train={"jit_compile": True})) is True


def test_eval_batch_follows_the_widest_layer_and_does_not_change_results():
    mlp = models.build(synthetic_config(model={"arch": "mlp"}).model, (28, 28, 1))
    lenet = models.build(synthetic_config().model, (28, 28, 1))
    assert train_steps.eval_batch_size(mlp) == 10_000  # widest: 784 pixels, 31 MB at 10,000
    assert train_steps.eval_batch_size(lenet) == 2427  # 32 MiB / (4 bytes * 24*24*6)
    cfg = synthetic_config()
    splits = data.load(cfg.data)
    model = models.build(cfg.model, splits.input_shape)
    steps = steps_for(cfg, model, splits.input_shape)
    steps.train_step(splits.x_train[:50], splits.y_train[:50])
    whole = steps.evaluate(splits.x_test, splits.y_test)
    for batch in (7, 64, 299):  # 300 examples: 43 rows of 7 with 1 padding, 5 of 60, 2 of 150
        steps.eval_batch = batch
        np.testing.assert_allclose(steps.evaluate(splits.x_test, splits.y_test), whole,
                                   rtol=1e-5)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 5000), batch=st.integers(1, 3000))
def test_padded_batches_cover_every_example_once_in_equal_rows(n, batch):
    index, weights = train_steps.padded_batches(n, batch)
    rows, size = index.shape
    assert weights.shape == index.shape and size <= batch
    assert rows == -(-n // batch)  # no more calls than batches of `batch`
    assert rows * size - n < rows  # fewer than one padding per row
    assert sorted(index[weights == 1].tolist()) == list(range(n))
    assert set(weights.ravel().tolist()) <= {0.0, 1.0} and index.max() == n - 1


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_a_note_reaches_the_reporter_train_log_and_summary(tmp_path, monkeypatch):
    """A notice raised while training (the XLA fallback is one) is not only shown: it is
    written to train.log and summary.json's notes, where a worker's user can read it."""
    real_fit = lifecycle.fit

    def fit_with_a_note(config, splits, on_epoch, reporter, **kwargs):
        reporter.note("a notice for the user")
        return real_fit(config, splits, on_epoch, reporter, **kwargs)

    class Listener(Quiet):
        heard: list = []

        def note(self, text):
            self.heard.append(text)

    monkeypatch.setattr(lifecycle, "fit", fit_with_a_note)
    cfg = synthetic_config(train={"epochs": 1})
    listener = Listener()
    outcome = lifecycle.run_one(config.RunSpec(cfg), data.load(cfg.data), tmp_path, listener)
    assert outcome.status == "completed"
    assert listener.heard == ["a notice for the user"]
    assert runs.read_summary(outcome.path)["notes"] == ["a notice for the user"]
    assert "note: a notice for the user" in (outcome.path / "train.log").read_text()


def test_a_pool_worker_forwards_notes_to_the_parent():
    """The pool's worker reporter sends a note to the parent's queue with the run's index."""
    import queue

    from bnexp.backends.pool import _Events

    events = queue.Queue()
    _Events(events, 3).note("XLA could not compile the step")
    assert events.get_nowait() == ("note", 3, "XLA could not compile the step")
