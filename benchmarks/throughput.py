"""Training throughput of bnexp's loop against Keras model.fit and a bare tf.function step.

    python benchmarks/throughput.py [--examples 20000] [--epochs 3] [--cases lenet-256 ...]

Same model (bnexp's builder), same Fashion-MNIST examples, batch size and threads
for every loop. Cases: lenet-256, lenet-32, mlp-256, mlp-32 (the default), and
resnet8-128, resnet20-128 (He et al.'s CIFAR ResNet, model.arch resnet; named only).
Each loop runs `--epochs` epochs; the first (tracing, compiling) is dropped and the
median samples/s of the rest is reported: training only, evaluation excluded (bnexp's
own evaluation cost is reported separately, as a share of an epoch).
  bnexp  loop.fit with every default metric and the run's evaluation
  fit    model.compile(metrics=["accuracy"]) + model.fit; jit_compile "auto", which
         Keras 3 resolves to no XLA on a machine without GPU
  fit_xla  the same with jit_compile=True (not run unless asked: --loops ... fit_xla)
  bare   a tf.function GradientTape step fed NumPy batches, nothing else
  (bnexp's first epoch is reported as its samples/s over the later epochs': "1st epoch")
  bnexp_scratch  bnexp's loop with model.bn.impl: scratch (bnexp's own BN layer); the
         table's scratch/keras column is its speed over `bnexp` (Keras' BN) measured
         call against call (paired_calls: both models' compiled steps alternating)
  bnexp_bf16  bnexp's loop with train.precision: mixed_bfloat16; column bf16/fp32, paired
  bnexp_xla, bnexp_noxla, bnexp_except_conv  bnexp's loop with train.jit_compile true,
         false, except_conv; columns xla/auto, noxla/auto, exc/auto: paired against
         `bnexp` (auto unless --set train.jit_compile=...), >1x is faster than it
  torch, torch_compile  the same model in PyTorch, d2l's eager loop (and torch.compile):
         benchmarks/torch_peer.py, which says how to install PyTorch for it
Each case is measured --repeats times, the loops interleaved, so the machine's
drift hits all alike; the table gives medians of samples/s and the median of the
per-repeat ratios. --threads INTRA INTER applies to every loop alike.
--device cpu | gpu | auto (default: the GPU where TensorFlow sees one) runs every loop
there, PyTorch's on CUDA; the output names the device.
Prints a table and CSV with bnexp/fit and bnexp/bare ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bnexp.tfquiet import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from tensorflow import keras  # noqa: E402

from bnexp import config, data  # noqa: E402
from bnexp.model import build as models  # noqa: E402
from bnexp.reporter import NullReporter as Quiet  # noqa: E402
from bnexp.training import compiled, loop, objective  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_peer  # noqa: E402

CASES = {
    "lenet-256": {"model": {"arch": "lenet"}, "data": {"batch_size": 256}},
    "lenet-32": {"model": {"arch": "lenet"}, "data": {"batch_size": 32}},
    "mlp-256": {"model": {"arch": "mlp", "activation": "relu", "bn": {"placement": "after",
                                                                     "input": True}},
                "data": {"batch_size": 256}, "optimizer": {"learning_rate": 0.01}},
    "mlp-32": {"model": {"arch": "mlp", "activation": "relu", "bn": {"placement": "after",
                                                                    "input": True}},
               "data": {"batch_size": 32}, "optimizer": {"learning_rate": 0.01}},
    # He et al.'s CIFAR ResNet on 28x28x1, SGD at d2l's ResNet rate: minutes per run, so
    # only when named (--cases resnet8-128)
    "resnet8-128": {"model": {"arch": "resnet", "depth": 8}, "data": {"batch_size": 128},
                    "optimizer": {"learning_rate": 0.05}},
    "resnet20-128": {"model": {"arch": "resnet", "depth": 20}, "data": {"batch_size": 128},
                     "optimizer": {"learning_rate": 0.05}},
}
DEFAULT_CASES = ["lenet-256", "lenet-32", "mlp-256", "mlp-32"]


def case_config(name: str, examples: int, epochs: int, sets: list[str],
                validation: int = 5000) -> config.Config:
    raw = {"name": name, "data": {"validation_size": validation, "limit": examples},
           "train": {"epochs": epochs}}
    for section, values in CASES[name].items():
        raw.setdefault(section, {}).update(values)
    raw = config.apply_overrides(raw, sets, "benchmark")
    return config.validate(raw, "benchmark")


def bnexp_loop(cfg, splits) -> tuple[float, float, float]:
    """(median samples/s after the first epoch, evaluation seconds / training seconds,
    the first epoch's samples/s over the later epochs': what tracing and compiling cost)."""
    rows = []
    keras.backend.clear_session()
    loop.fit(cfg, splits, rows.append, Quiet())
    later = rows[1:] or rows
    eval_share = statistics.median(r["eval_seconds"] / r["seconds"] for r in later)
    speed = statistics.median(r["samples_per_sec"] for r in later)
    return speed, eval_share, rows[0]["samples_per_sec"] / speed


def paired_calls(cfg, changed, splits, passes: int = 3) -> float:
    """The speed of `changed` over `cfg` in bnexp's compiled steps, call against call:
    the two models' steps alternate call by call (steps_per_call steps each, as loop.fit
    calls them) over `passes` passes of the training set, after one pass that compiles,
    so the machine's drift hits both alike; whole runs one after the other differ by up
    to 25% here. Returns the seconds of `cfg`'s calls over those of `changed`'s."""
    x = tf.convert_to_tensor(splits.x_train, tf.uint8)
    y = tf.convert_to_tensor(splits.y_train, tf.int32)
    both = []
    for c in (cfg, changed):
        model, _ = loop.new_model(c, splits.input_shape)
        both.append(compiled.make_steps(c, model, splits.input_shape))
    order, seconds = np.random.default_rng(cfg.seed), [0.0, 0.0]
    for timed in [False] + [True] * passes:
        chunks = loop.batch_chunks(order.permutation(len(x)), cfg.data.batch_size,
                                   cfg.train.steps_per_call)
        for chunk in chunks:
            for i, steps_ in enumerate(both):
                start = time.perf_counter()
                steps_.train_many(x, y, chunk).numpy()
                seconds[i] += (time.perf_counter() - start) * timed
    return seconds[0] / seconds[1]


def same_as(cfg, splits) -> int:
    """The weights of bnexp's model for cfg (Keras' count_params: BN's moving statistics
    included), which the PyTorch peer must have too."""
    keras.backend.clear_session()
    return models.build(cfg.model, splits.input_shape).count_params()


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def keras_fit(cfg, splits, jit_compile="auto") -> float:
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.seed)
    model = models.build(cfg.model, splits.input_shape)
    model.compile(optimizer=objective.make_optimizer(cfg.optimizer), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    timer = EpochTimer()
    timer.seconds = []
    model.fit(models.to_unit(splits.x_train).numpy(), splits.y_train,
              batch_size=cfg.data.batch_size, epochs=cfg.train.epochs, shuffle=True,
              verbose=0, callbacks=[timer])
    return len(splits.x_train) / statistics.median(timer.seconds[1:] or timer.seconds)


def bare_step(cfg, splits) -> float:
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.seed)
    model = models.build(cfg.model, splits.input_shape)
    optimizer = objective.make_optimizer(cfg.optimizer)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    batch, n = cfg.data.batch_size, len(splits.x_train)
    rng, seconds, x_train = np.random.default_rng(0), [], models.to_unit(splits.x_train).numpy()
    for _ in range(cfg.train.epochs):
        perm = rng.permutation(n)
        start = time.perf_counter()
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            loss = step(x_train[idx], splits.y_train[idx])
        float(loss)
        seconds.append(time.perf_counter() - start)
    return n / statistics.median(seconds[1:] or seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, choices=list(CASES),
                        help="default: the LeNet and MLP ones")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="config override for bnexp's loop, e.g. train.jit_compile=false")
    parser.add_argument("--loops", nargs="+", default=["bnexp", "fit", "bare"],
                        choices=list(LOOPS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--validation-size", type=int, default=5000,
                        help="0: evaluation is the test set alone (eval/epoch = its share)")
    parser.add_argument("--threads", type=int, nargs=2, metavar=("INTRA", "INTER"))
    parser.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                        help="auto: the first GPU where TensorFlow sees one, else the CPU")
    args = parser.parse_args()
    device = choose_device(args.device)
    torch_loops = {"torch", "torch_compile"} & set(args.loops)
    if torch_loops:
        sys.path.append(str(Path(__file__).resolve().parents[1] / ".bench" / "torch"))
        if not torch_peer.available():
            sys.exit("PyTorch is not installed for the benchmark: .venv/bin/pip install "
                     '--target .bench/torch "torch==2.13.0+cpu"')
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(args.threads[1])
    results = []
    for name in args.cases:
        cfg = case_config(name, args.examples, args.epochs, args.sets, args.validation_size)
        splits = data.load(cfg.data)
        runs: list[dict] = []
        for _ in range(args.repeats):
            one = {}
            if "bnexp" in args.loops:
                one["bnexp"], one["eval_share"], one["first_epoch"] = bnexp_loop(cfg, splits)
            for variant, change in VARIANTS.items():
                if variant in args.loops:
                    changed = case_config(name, args.examples, args.epochs,
                                          [*args.sets, change], args.validation_size)
                    one[variant] = bnexp_loop(changed, splits)[0]
                    one[f"{variant}_paired"] = paired_calls(cfg, changed, splits)
            if "fit" in args.loops:
                one["fit"] = keras_fit(cfg, splits)
            if "fit_xla" in args.loops:
                one["fit_xla"] = keras_fit(cfg, splits, jit_compile=True)
            if "bare" in args.loops:
                one["bare"] = bare_step(cfg, splits)
            for loop_name in sorted(torch_loops):
                threads = args.threads[0] if args.threads else None
                one[loop_name] = torch_peer.train(cfg, splits, loop_name == "torch_compile",
                                                  threads, device, same_as(cfg, splits))
            runs.append(one)
            print(name, one, file=sys.stderr, flush=True)
        row = {"case": name}
        for key in runs[0]:
            row[key] = statistics.median(r[key] for r in runs)
        for other in PEERS:
            if "bnexp" in runs[0] and other in runs[0]:
                row[f"over_{other}"] = statistics.median(r["bnexp"] / r[other] for r in runs)
        for variant in VARIANTS:  # the same loop changed, over bnexp as it is
            if "bnexp" in runs[0] and variant in runs[0]:
                row[f"{variant}_over_bnexp"] = statistics.median(r[f"{variant}_paired"]
                                                                 for r in runs)
        peers = [k for k in PEERS if k in runs[0]]
        if "bnexp" in runs[0] and peers:  # per repeat: bnexp over the fastest peer
            row["over_best"] = statistics.median(r["bnexp"] / max(r[k] for k in peers)
                                                 for r in runs)
        results.append(row)
    print(f"medians of {args.repeats} repeat(s), {args.examples:,} training examples, "
          f"epochs 2..{args.epochs} timed")
    print(f"device: {describe(device)}")
    if torch_loops:
        import torch

        print(f"PyTorch {torch.__version__} on {torch_peer.device_name(device)}")
    print(f"threads: intra {tf.config.threading.get_intra_op_parallelism_threads()} "
          f"inter {tf.config.threading.get_inter_op_parallelism_threads()} (0 = TF default), "
          f"cores {os.cpu_count()}, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    report(results)


VARIANTS = {"bnexp_scratch": "model.bn.impl=scratch",  # bnexp's loop with one setting changed
            "bnexp_bf16": "train.precision=mixed_bfloat16",
            "bnexp_xla": "train.jit_compile=true",  # against train.jit_compile as --set gives
            "bnexp_noxla": "train.jit_compile=false",  # it (auto: the arch's default)
            "bnexp_except_conv": "train.jit_compile=except_conv"}
VARIANT_HEADS = {"bnexp_scratch": "scratch/keras", "bnexp_bf16": "bf16/fp32",
                 "bnexp_xla": "xla/auto", "bnexp_noxla": "noxla/auto",
                 "bnexp_except_conv": "exc/auto"}
def choose_device(asked: str) -> str:
    """cpu or gpu. TensorFlow places ops on its first GPU by itself; for cpu on a machine
    with GPUs they are hidden from it (before its first op). A gpu asked for and not
    there is an error, not a silent CPU run."""
    gpus = tf.config.list_physical_devices("GPU")
    if asked == "gpu" and not gpus:
        sys.exit("--device gpu: TensorFlow sees no GPU on this machine")
    if asked == "cpu" or not gpus:
        tf.config.set_visible_devices([], "GPU")
        return "cpu"
    return "gpu"


def describe(device: str) -> str:
    """The device TensorFlow trains on, in words (named in the output)."""
    if device == "gpu":
        gpu = tf.config.list_physical_devices("GPU")[0]
        details = tf.config.experimental.get_device_details(gpu)
        return f"GPU {details.get('device_name', gpu.name)}"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


LOOPS = ("bnexp", "fit", "fit_xla", "bare", "torch", "torch_compile", *VARIANTS)
PEERS = ("fit", "fit_xla", "torch", "torch_compile")  # what a user would otherwise run


def report(results: list[dict]) -> None:
    """The table, then the same as CSV, with a column per loop that ran."""
    loops = [k for k in LOOPS if any(k in r for r in results)]
    others = [k for k in (*PEERS, "best") if any(f"over_{k}" in r for r in results)]
    variants = [k for k in VARIANTS if any(f"{k}_over_bnexp" in r for r in results)]
    heads = [*loops, *(f"bnexp/{k}" for k in others), *(VARIANT_HEADS[k] for k in variants),
             "eval/epoch", "1st epoch"]
    print(f"{'case':<12} " + " ".join(f"{h:>10}" for h in heads))
    nan = float("nan")
    for r in results:
        cells = [f"{r[k]:,.0f}" if k in r else "-" for k in loops]
        cells += [f"{r.get(f'over_{k}', nan):.2f}x" for k in others]
        cells += [f"{r.get(f'{k}_over_bnexp', nan):.2f}x" for k in variants]
        cells.append(f"{r['eval_share']:.1%}" if "eval_share" in r else "-")
        cells.append(f"{r['first_epoch']:.2f}x" if "first_epoch" in r else "-")
        print(f"{r['case']:<12} " + " ".join(f"{c:>10}" for c in cells))
    columns = ["case", *(f"{k}_samples_per_sec" for k in loops),
               *(f"bnexp_over_{k}" for k in others), *(f"{k}_over_bnexp" for k in variants),
               "eval_share_of_epoch", "first_epoch_over_later"]
    print("\n" + ",".join(columns))
    for r in results:
        cells = [r["case"], *(f"{r.get(k, nan):.1f}" for k in loops),
                 *(f"{r.get(f'over_{k}', nan):.3f}" for k in others),
                 *(f"{r.get(f'{k}_over_bnexp', nan):.3f}" for k in variants),
                 f"{r.get('eval_share', nan):.4f}", f"{r.get('first_epoch', nan):.3f}"]
        print(",".join(cells))


if __name__ == "__main__":
    main()
