"""The config's sections: data, model (and its bn), optimizer, train, diagnostics and
sweep; every key of each, its default, its range and its meaning, in one place.

A YAML file only states what differs from these defaults. `strict` and
`extra="forbid"` make a wrong type or a typo an error instead of a guess. The field
docstrings are the documentation: docs/config.md is generated from them
(`python -m bnexp.config.reference`), and a test fails when the two disagree. The
config as a whole (name, seed, the sections) is bnexp.config.schema's Config.

No TensorFlow here: `bnexp validate` runs on these modules alone.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from bnexp.config.base import (
    DEFAULT_HIDDEN,
    MAX_EXAMPLES,
    MAX_LAYERS,
    MAX_SEED,
    MAX_WIDTH,
    NUM_CLASSES,
    Section,
)
from bnexp.config.network import LayerSpec
from bnexp.config.normalization import BNConfig, DropoutConfig
from bnexp.config.resnet import resnet_defaults
from bnexp.config.schedule import ScheduleConfig
from bnexp.errors import BadInput
from bnexp.safeopen import NAME_MAX, PATH_MAX, too_long_for_a_path

__all__ = ["DEFAULT_HIDDEN", "MAX_EXAMPLES", "MAX_LAYERS", "MAX_SEED", "MAX_WIDTH",
           "NUM_CLASSES", "BNConfig", "DropoutConfig", "Section"]


class DataConfig(Section):
    """Which dataset, how it is split, and how it is batched."""

    dataset: Literal["fashion_mnist", "mnist", "cifar10", "synthetic"] = "fashion_mnist"
    """fashion_mnist | mnist: 28x28 grey images, 10 classes; cifar10: 32x32 colour (RGB)
    images, 10 classes, from CIFAR-10's python version; synthetic: tiny generated set."""
    path: str | None = None
    """Folder holding the four IDX files (or mnist.npz); cifar10: the cifar-10-batches-py
    folder (data_batch_1 .. data_batch_5, test_batch) or the folder holding it. null =
    search the usual places."""
    batch_size: int = Field(256, gt=0, le=MAX_EXAMPLES)
    """Examples per training step. BN statistics are computed over this many examples."""
    validation_size: int = Field(5000, ge=0, le=MAX_EXAMPLES)
    """The first N training examples are held out for validation (Geron's split). 0 = none."""
    limit: int | None = Field(None, gt=0, le=MAX_EXAMPLES)
    """Use only the first N training examples (after the validation split). null = all."""
    test_limit: int | None = Field(None, gt=0, le=MAX_EXAMPLES)
    """Evaluate on only the first N test examples. null = the whole test set."""
    pad_to: int | None = Field(None, ge=28, le=256)
    """Zero-pad the 28x28 images to pad_to x pad_to (LeNet-5 used 32; cifar10's 32x32 images:
    at least 32), every channel alike. null = no padding."""
    resize_to: int | None = Field(None, ge=28, le=256)
    """Resize the images to resize_to x resize_to as tf.image.resize_with_pad does (bilinear,
    aspect kept: a square 28x28 image is scaled, not padded); d2l's TF port uses 224. The
    dataset then takes (N/28)^2 times the memory. null = keep 28x28."""
    validation_from: Literal["start", "end"] = "start"
    """Where the validation examples are taken from: the first N (Geron) or the last N
    (Keras' validation_split)."""
    shuffle_buffer: int | None = Field(None, gt=0, le=MAX_EXAMPLES)
    """null: a fresh permutation of the training set every epoch. N: the order a tf.data
    shuffle(N) buffer gives (a small buffer barely shuffles: notebook 001's shuffle(20))."""
    test_shift: list[str] | None = Field(None, min_length=1, max_length=10)
    """A shifted copy of the test set to evaluate too after each epoch, as `bnexp eval
    --shift` takes it, e.g. [noise=80] or [rotate=90, noise=80] (applied in order): its
    loss and accuracy with the moving statistics (and with the batches' own where
    diagnostics.batch_stats_eval is on) go to eval.csv, one row per epoch; compare reads
    them as test_acc@noise=80/population. null = none."""

    @model_validator(mode="after")
    def _batch_fits(self) -> DataConfig:
        if self.pad_to is not None and self.resize_to is not None:
            raise ValueError("pad_to and resize_to exclude each other")
        if self.limit is not None and self.batch_size > self.limit:
            raise ValueError(
                f"batch_size {self.batch_size} is larger than limit {self.limit}: "
                "not one full batch to train on"
            )
        return self

    @field_validator("test_shift")
    @classmethod
    def _known_shifts(cls, specs: list[str] | None) -> list[str] | None:
        """Each a shift `bnexp eval --shift` takes, stored as its label (noise=80.0 ->
        noise=80: one run however spelled)."""
        from bnexp import shifts

        if specs is None:
            return None
        try:
            return [shift.label for shift in shifts.parse_all(specs, "shift")]
        except BadInput as e:
            raise ValueError(str(e)) from None

    @field_validator("pad_to")
    @classmethod
    def _null_for_no_padding(cls, pad_to: int | None, info: ValidationInfo) -> int | None:
        """pad_to: 28 pads 28x28 images by nothing (cifar10: 32, its 32x32 images): stored
        as null, one run however spelled; smaller than the images is refused."""
        side = 32 if info.data.get("dataset") == "cifar10" else 28
        if pad_to is not None and pad_to < side:
            raise ValueError(f"{pad_to} is smaller than the {side}x{side} images: pad_to "
                             f"pads them, at least {side}")
        return None if pad_to == side else pad_to

    @field_validator("path")
    @classmethod
    def _could_be_a_path(cls, path: str | None) -> str | None:
        """A path no file system could hold is refused here, so that `validate` finds
        what `train` would (an empty one would be the current folder: null searches).
        Kept in one spelling (a/b, not a//b, a/./b or a/b/) so that one folder makes one
        run: a grid over two spellings trained it twice. `..` stays (a link may precede)."""
        if path is None:
            return path
        if not path or "\0" in path:
            raise ValueError("an empty path or one with a NUL character; null searches "
                             "the usual places")
        if too_long_for_a_path(path):
            raise ValueError(f"too long for a path (names up to {NAME_MAX} bytes, paths "
                             f"up to {PATH_MAX})")
        return str(PurePosixPath(path))


class ModelConfig(Section):
    """The network: LeNet, an MLP, a ResNet or a layer list, normalized as `bn` says."""

    arch: Literal["lenet", "mlp", "resnet", "layers"] = "lenet"
    """lenet: two valid convolutions + pooling, then dense layers; mlp: dense layers only;
    resnet: He et al. 2016's CIFAR ResNet (see depth); layers: the list in `layers`, as
    written (any model of layers and residual blocks)."""
    layers: list[LayerSpec] | None = Field(None, max_length=MAX_LAYERS)
    """arch: layers: the model, layer by layer, each a mapping with its `type` (conv, dense,
    bn, group_norm, layer_norm, instance_norm, dropout, noise, activation, max_pool,
    avg_pool, flatten, global_avg_pool, scalar_bias, scalar_scale, residual) and
    settings; the last layer gives the 10 outputs; at most 1,000 layers (residual blocks'
    inner layers counted). Any arch: at most 100 million weights, and at most
    16 GiB of layer outputs for one batch (`validate` says so before TensorFlow would fail
    to allocate them). See docs/config.md#the-model-as-a-list-of-layers."""
    hidden: list[int] | None = None
    """Widths of the hidden dense layers. null = lenet [120, 84], mlp [300, 100]."""
    filters: list[int] = [6, 16]
    """LeNet: output channels of each convolution (each followed by 2x2 pooling)."""
    kernel_size: int = Field(5, gt=0, le=64)
    """LeNet: convolution kernel size (valid padding, so 28x28 -> 4x4x16 with the defaults)."""
    pooling: Literal["avg", "max"] = "avg"
    """LeNet: 2x2 average (d2l) or max pooling."""
    activation: Literal["relu", "sigmoid", "elu", "tanh", "selu"] = "sigmoid"
    """Activation of every hidden layer. The output layer gives logits."""
    use_bias: Literal["auto"] | StrictBool = "auto"
    """auto: no bias on a layer whose output feeds BN (BN's beta takes its role); true/false."""
    init: Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal"] = (
        "glorot_uniform"
    )
    """Kernel initializer of every conv and dense layer (glorot_uniform = d2l's Xavier)."""
    depth: int = Field(20, ge=4, le=1000)
    """resnet: its layers with weights, 2 * blocks * stages + 2 (6n + 2 with the default
    three stages: 8, 14, 20, 32, 44, 56, 110). A resnet's other defaults differ from
    lenet's where not set: filters [16, 32, 64] (the stages' widths), activation relu,
    init he_normal; its convolutions are 3x3 with same padding."""
    shortcut: Literal["projection", "pad"] = "projection"
    """resnet: the shortcut where a block changes the shape: projection (a 1x1
    convolution + the block's normalization: He et al.'s option B) or pad (strided
    identity zero-padded in channels, no weights: option A)."""
    residual_init: Literal["standard", "skipinit", "fixup"] = "standard"
    """resnet: standard (as built); skipinit: each branch multiplied by a trainable scalar
    starting at 0 (De & Smith 2020); fixup (Zhang et al. 2019; needs bn.placement: none):
    each branch's last convolution and the classifier start at zero, the branches' other
    convolutions at He's scale (fan_out, normal) times L^(-1/2) (L blocks, two layers per
    branch), a trainable scalar bias before each convolution, activation and the
    classifier, and a scalar multiplier per branch. The reference code also adds a
    branch's first bias to a pad shortcut's input; bnexp follows the paper's rule."""
    bn: BNConfig = BNConfig()
    dropout: DropoutConfig | None = None
    """lenet, mlp: dropout in the hidden blocks, e.g. {rate: 0.5, placement: before_bn}.
    null = none. (A layer list places {type: dropout} layers itself.)"""

    @model_validator(mode="after")
    def _resolve_hidden(self) -> ModelConfig:
        if (self.arch == "layers") != (self.layers is not None):
            raise ValueError("layers is given with arch: layers, and only then")
        if self.arch == "layers":
            if not self.layers:
                raise ValueError("layers is an empty list")
            if self.dropout is not None:
                raise ValueError("dropout is for the presets: a layer list places "
                                 "{type: dropout} layers itself")
            self._not_resnet()
            return self
        if self.arch == "resnet":
            return resnet_defaults(self)
        self._not_resnet()
        if self.hidden is None:
            self.hidden = list(DEFAULT_HIDDEN[self.arch])
        for key, widths in (("hidden", self.hidden), ("filters", self.filters)):
            if not widths or min(widths) <= 0 or max(widths) > MAX_WIDTH:
                raise ValueError(f"{key} must be a non-empty list of widths from 1 to "
                                 f"{MAX_WIDTH}")
        return self


    def _not_resnet(self) -> None:
        """ValueError for a resnet-only key set on another arch."""
        for key in ("depth", "shortcut", "residual_init"):
            if getattr(self, key) != type(self).model_fields[key].default:
                raise ValueError(f"{key} is for arch: resnet (a layer list builds its "
                                 "residual blocks itself)")


class OptimizerConfig(Section):
    """The optimizer, its learning rate and its schedule, and weight decay."""

    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    """sgd (d2l, Geron), adam or rmsprop, with Keras' defaults for what is not set here.
    adamw is adam with weight_decay (Keras' AdamW): stored as adam (one run, one
    spelling), and needs weight_decay > 0 (bnexp has no default decay)."""
    learning_rate: float = Field(1.0, gt=0.0, le=1e6)
    """d2l's BN-LeNet trains with SGD at 1.0; without BN that rate is usually too high.
    With a schedule: the peak rate the schedule scales."""
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    """SGD and RMSprop momentum. Adam has its own (beta_1): leave this at 0 for adam."""
    nesterov: bool = False
    """sgd: Nesterov momentum (Keras' SGD nesterov; needs momentum > 0)."""
    weight_decay: float = Field(0.0, ge=0.0, le=100.0)
    """Decoupled weight decay as Keras' optimizers apply it (their weight_decay): before
    each update every conv and dense kernel that trains is shrunk, W <- W - lr * wd * W,
    outside the gradient (adam: AdamW, Loshchilov & Hutter 2019); biases, gamma and beta
    are not decayed. With plain SGD (momentum 0) it is the update train.l2 of the same
    value gives; with momentum or adam / rmsprop the two differ. 0 = none (Keras' AdamW
    default of 0.004 does not apply)."""
    schedule: ScheduleConfig = ScheduleConfig()

    @model_validator(mode="after")
    def _momentum_applies(self) -> OptimizerConfig:
        """adamw is adam with decay; a setting another optimizer's (momentum or nesterov
        not at their defaults) is an error: one run, one resolved config."""
        if self.name == "adamw":
            if not self.weight_decay:
                raise ValueError("adamw needs weight_decay > 0 (bnexp has no default decay; "
                                 "adam with weight_decay is adamw)")
            self.name = "adam"
        if self.name == "adam" and self.momentum != 0.0:
            raise ValueError("momentum must be 0 for adam (Adam's beta_1 plays that role)")
        if self.nesterov and self.name != "sgd":
            raise ValueError(f"nesterov applies to sgd only, not {self.name}")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov needs momentum > 0 (without momentum it is plain SGD)")
        return self


class TrainConfig(Section):
    """The training budget."""

    epochs: int = Field(10, gt=0, le=100_000)
    """Passes over the training set."""
    loss: Literal["sparse_categorical_crossentropy", "categorical_crossentropy"] = (
        "sparse_categorical_crossentropy")
    """Keras' loss, on integer labels (sparse) or one-hot labels: the same number when the
    outputs are right for it."""
    from_logits: bool = True
    """true: the model's outputs are logits (no softmax on the last layer), as bnexp's
    presets give. false: the outputs are taken as probabilities, as Keras' default; a
    mismatch with the last layer is warned about at start (notebooks 000, 002 do it)."""
    l2: float = Field(0.0, ge=0.0, le=1e3)
    """An L2 penalty on the conv and dense kernels that train, added to the loss the
    gradient is taken of: l2 / 2 * (the sum of every such kernel's squared entries), so
    its gradient is l2 * W; biases, gamma and beta are not penalized. metrics.csv's
    train_loss is the data loss, without it. For plain SGD (momentum 0) the update is
    the one optimizer.weight_decay of the same value gives; with momentum the penalty's
    gradient goes through the momentum, and adam / rmsprop divide it by their running
    gradient scale, so there the two differ (Loshchilov & Hutter 2019). 0 = none."""
    trainable: Literal["all", "norm_only", "all_but_norm"] = "all"
    """Which weights the optimizer updates; the others stay at their initial values.
    norm_only: only the normalization layers' gamma and beta (bn, group_norm,
    layer_norm, instance_norm; Frankle et al. 2020: the output layer is frozen too);
    all_but_norm: every weight but theirs. A layer of a list with `trainable: false` is
    frozen as well. Freezing only leaves weights out of the update: BN still normalizes
    with batch statistics in training steps and its moving statistics still move (Keras'
    layer.trainable, which would also switch BN to inference mode, is never set)."""
    deterministic: bool = False
    """TensorFlow op determinism: a resumed run then ends bit-identical to an uninterrupted
    one. Costs some speed."""
    jit_compile: Literal["auto", "except_conv"] | StrictBool = "auto"
    """XLA-compile the training and evaluation steps. true: the whole steps; except_conv:
    every layer but the convolutions, each run of layers between convolutions one XLA
    cluster, the convolutions on TensorFlow's own (oneDNN) kernels, which beat XLA's on
    CPU. auto: true for mlp, except_conv for lenet (benchmarks/throughput.py). Falls back
    to no XLA if XLA fails."""
    precision: Literal["float32", "mixed_bfloat16"] = "float32"
    """mixed_bfloat16: Keras' mixed precision policy, layers compute in bfloat16 (CPUs
    with AVX-512 BF16 or AMX, and GPUs, have units for it) and keep float32 weights; BN
    normalizes and keeps its moving statistics in float32 (both impls), the loss is
    float32. float32: everything in float32."""
    precise_bn: int = Field(0, ge=0, le=MAX_EXAMPLES)
    """Precise BN (Wu & Johnson 2021): before every evaluation, recompute each BN layer's
    moving statistics over the first N training examples with the weights fixed. 0 = off
    (plain moving averages)."""
    steps_per_call: int = Field(16, gt=0, le=10_000)
    """Training steps per compiled call: fewer Python round trips; Ctrl-C and the progress
    bar react once per call."""
    strategy: Literal["none", "mirrored"] = "none"
    """mirrored: data-parallel over the GPUs, or without GPUs over `replicas` logical CPU
    devices (tf.distribute.MirroredStrategy); each replica trains on its slice of the
    batch. BN per slice or global: model.bn.synchronized. No XLA."""
    replicas: int | None = Field(None, gt=0, le=64)
    """mirrored: how many replicas (devices). null = every GPU, or 2 CPU devices."""
    tensorboard: bool = False
    """Also write TensorBoard event files to the run folder's tensorboard/: the epoch
    metrics as scalars, each BN layer's gamma, beta and moving statistics as histograms."""

    @model_validator(mode="after")
    def _xla_not_mirrored(self) -> TrainConfig:
        if self.strategy == "mirrored" and self.jit_compile in (True, "except_conv"):
            raise ValueError(f"jit_compile: {str(self.jit_compile).lower()} does not work "
                             "with strategy: mirrored (use auto or false)")
        return self


class DiagnosticsConfig(Section):
    """What bnexp measures besides the metrics; off where it costs time."""

    batch_stats_eval: bool | None = None
    """null: on for a model with BN, off without. true: evaluate the test set with batch
    statistics too (BN in training mode, batches of data.batch_size) each epoch, leaving
    the moving statistics untouched: metrics.csv's test_*_batchstats, summary.json's
    bn_gap. A large gap to test_* means the moving averages have not caught up
    (momentum 0.99 on a short run) or BN is broken."""
    drift: int = Field(0, ge=0, le=MAX_EXAMPLES)
    """N > 0: drift.csv, per epoch and BN layer, how far the moving mean and variance are
    from the population statistics of the current weights over the first N training
    examples (what precise BN would set), as relative errors. 0 = off."""
    step_metrics: bool = False
    """steps.csv: the training loss and accuracy of every step (training mode, on that
    step's batch) and, every `every_steps` steps, the test loss and accuracy in inference
    mode: curves in steps, as Ioffe & Szegedy's Fig. 1(a)."""
    activations: bool = False
    """activations.csv: every `every_steps` steps, the 15th/50th/85th percentiles of the
    input to each hidden activation on a fixed probe batch (the first `probe_size` test
    examples), in inference mode; per unit for the first `activation_units` units of each
    layer (a conv unit is a channel) and over the whole layer (unit "all"). Ioffe &
    Szegedy's Fig. 1(b, c)."""
    grad_norms: bool = False
    """grad_norms.csv: at step 0 and every `every_steps` steps, per trained weight (named
    as `bnexp summary` names its layer), the norm of the training objective's gradient on
    a fixed probe batch (the first data.batch_size training examples), the model in
    training mode (BN on the batch's statistics, as a step sees it); nothing changes."""
    weight_norms: bool = False
    """weight_norms.csv: before training (epoch 0) and after each epoch, per trainable
    weight, its norm; for a kernel followed directly by a normalization (scale-invariant)
    also the effective learning rate lr / |w|^2 (van Laarhoven 2017)."""
    predictiveness: bool = False
    """predictiveness.csv: at step 0 and every `every_steps` steps, on the probe batch of
    grad_norms, Santurkar et al. 2018's loss landscape and gradient predictiveness: the
    objective and the gradient's change after a step of scale x lr along the gradient,
    for each of `predictiveness_scales`. Costs 1 + len(scales) gradients a probe."""
    predictiveness_scales: list[Annotated[float, Field(gt=0.0, le=1e6)]] = Field(
        [0.5, 1.0, 2.0, 4.0], min_length=1, max_length=20)
    """Multiples of the current learning rate to step by (Santurkar et al.: 0.5 to 4)."""
    every_steps: int = Field(100, gt=0, le=10**9)
    """Steps between the probes of step_metrics (test metrics), activations, grad_norms
    and predictiveness; also taken at step 0."""
    probe_size: int = Field(1000, gt=0, le=MAX_EXAMPLES)
    """Examples in the activations' probe batch."""
    activation_units: int = Field(3, ge=0, le=10_000)
    """Units per layer with their own percentiles in activations.csv."""


class SweepConfig(Section):
    """A grid of dotted keys to lists of values, and arms (cells), run for each seed (a
    paired design)."""

    grid: dict[str, list[Any]] = {}
    """Dotted config key -> the values to try, e.g. model.bn.placement: [none, before]
    (two cells that make the same run, e.g. [1, 1.0], are refused). The grid times the
    seeds may make at most 20,000 runs per config file, and per command over all the
    config files it is given."""
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] | None = Field(None, max_length=1000)
    """null = the config's own seed only (each seed once)."""
    cells: list[dict[str, Any]] | None = None
    """Arms: several dotted keys set together, each arm a mapping with an optional label,
    e.g. [{label: adam, optimizer.name: adam, optimizer.learning_rate: 0.001}, {label: sgd,
    optimizer.name: sgd, optimizer.momentum: 0.9}]; crossed with the grid and the seeds,
    and each arm's runs validated as their own config. An arm's keys are checked as grid
    keys are, and none may be a grid key too; two arms that make the same run are refused.
    The label (letters, digits, . _ -, unique) names the arm in its run folders and in
    compare's `label` column; without one, an arm is labelled by its values joined by -
    (sgd-0.9). null = no arms: the config as written is the one arm."""

    @model_validator(mode="after")
    def _non_empty(self) -> SweepConfig:
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid key {key!r} has an empty list of values")
        if self.seeds is not None and not self.seeds:
            raise ValueError("seeds is an empty list")
        if self.cells is not None and not self.cells:
            raise ValueError("cells is an empty list (leave it out for no arms)")
        if self.seeds is not None and len(set(self.seeds)) < len(self.seeds):
            raise ValueError("seeds lists a seed twice (the same run would train twice)")
        if "seed" in self.grid or "name" in self.grid:
            raise ValueError("grid: seed and name are not grid keys (use sweep.seeds; the "
                             "name is the config's)")
        return self
