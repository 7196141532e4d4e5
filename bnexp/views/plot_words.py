"""The words figures print: axis titles with units instead of column names ("test
accuracy", "epoch"), legend entries that name what differs between groups ("BN before",
"no BN", "learning rate 0.1", an arm's label) instead of `placement=before (n=3)`, the
user's own names for them (`--label KEY=VALUE=TEXT`), and the note that says what a
line and its band are. No matplotlib here.
"""

from __future__ import annotations

from dataclasses import dataclass

from bnexp.errors import BadInput, did_you_mean

BANDS = ("ci", "std", "none")  # --band: 95% CI of the mean, mean ± 1 std, no band
AXIS = {
    "epoch": "epoch", "step": "training step", "train_loss": "training loss",
    "train_acc": "training accuracy", "val_loss": "validation loss",
    "val_acc": "validation accuracy", "test_loss": "test loss", "test_acc": "test accuracy",
    "test_loss_batchstats": "test loss with batch statistics",
    "test_acc_batchstats": "test accuracy with batch statistics", "lr": "learning rate",
    "seconds": "epoch time (s)", "samples_per_sec": "throughput (examples/s)",
    "eval_seconds": "evaluation time (s)",
    "mean_error": "moving mean: relative error",
    "variance_error": "moving variance: relative error",
    "data.batch_size": "batch size (examples per step)", "train.epochs": "epochs",
    "model.bn.virtual_batch_size": "ghost batch size (examples)",
    "train.precise_bn": "precise BN (examples)", "model.depth": "depth (layers)",
}
ERROR = "_error"  # test_error: 1 - test_acc, for plot sweep
KEY_WORDS = {  # a config key in a legend or on an axis; else its last part in words
    "optimizer.learning_rate": "learning rate", "data.batch_size": "batch size",
    "model.bn.kind": "normalization", "model.bn.placement": "BN placement",
    "model.bn.momentum": "BN momentum", "model.bn.epsilon": "BN epsilon",
    "model.bn.virtual_batch_size": "ghost batch", "train.precise_bn": "precise BN",
    "optimizer.momentum": "momentum", "optimizer.weight_decay": "weight decay",
    "train.l2": "L2", "model.bn.groups": "groups", "model.bn.renorm_momentum": "renorm momentum",
}
VALUE_WORDS = {  # a config key's values in words
    "model.bn.placement": {"none": "no BN", "before": "BN before", "after": "BN after"},
    "model.bn.kind": {"batch": "batch norm", "renorm": "batch renorm", "group": "group norm",
                      "layer": "layer norm", "instance": "instance norm"},
    "model.bn.impl": {"keras": "Keras BN", "scratch": "bnexp's BN"},
    "optimizer.name": {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"},
    "data.dataset": {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10": "CIFAR-10",
                     "synthetic": "synthetic data"},
    "model.use_bias": {"true": "with bias", "false": "no bias"},
    "train.precise_bn": {"0": "no precise BN"},
    "model.bn.virtual_batch_size": {"null": "no ghost batches"},
}
VALUE_ONLY = {"label", "name", "model.arch", "model.activation", "model.bn.behaviour",
              "train.precision", "train.trainable", "optimizer.schedule.name"}


def axis_words(column: str) -> str:
    """An axis title: a metrics.csv column or a config key in words, with its unit."""
    if column in AXIS:
        return AXIS[column]
    if column.endswith(ERROR) and f"{column[:-len(ERROR)]}_acc" in AXIS:
        return AXIS[f"{column[:-len(ERROR)]}_acc"].replace("accuracy", "error (1 - accuracy)")
    return key_words(column)


def key_words(key: str) -> str:
    """A config key in words: learning rate, BN momentum, virtual batch size."""
    if key in KEY_WORDS:
        return KEY_WORDS[key]
    words = key.rsplit(".", 1)[-1].replace("_", " ")
    return " ".join("BN" if w.lower() == "bn" else w for w in words.split())


def value_words(key: str, value) -> str:
    """One setting as a legend names it: `BN before`, `no BN`, `learning rate 0.1`,
    `sigmoid`, an arm's own label; a path by its last part."""
    text = shown_value(value)
    if text in VALUE_WORDS.get(key, {}):
        return VALUE_WORDS[key][text]
    if "/" in text.rstrip("/"):  # a folder: its name says it (fashion-mnist)
        return text.rstrip("/").rsplit("/", 1)[-1]
    if key in VALUE_ONLY or key.endswith(".name"):
        return text
    return f"{key_words(key)} {text}"


def shown_value(value) -> str:
    """A value as group labels print it: 0.1, 128, before (128.0 as 128)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Rename:
    """--label KEY=VALUE=TEXT: the groups whose KEY (dotted, or its last part) is VALUE
    are called TEXT in legends and titles."""

    key: str
    value: str
    text: str
    given: str

    def matches(self, key: str, value) -> bool:
        if self.key not in (key, key.rsplit(".", 1)[-1]):
            return False
        shown = shown_value(value)
        if shown == self.value:
            return True
        try:  # 0.10 and 1e-1 name 0.1
            return float(self.value) == float(shown)
        except ValueError:
            return False


def parse_label(given: str) -> Rename:
    """KEY=VALUE=TEXT (TEXT may hold '='); BadInput naming --label otherwise."""
    parts = given.split("=", 2)
    if len(parts) < 3 or not parts[0] or not parts[2].strip():
        raise BadInput(f"--label {given}: expected KEY=VALUE=TEXT, e.g. "
                       "--label model.bn.placement=none='no BN'")
    return Rename(parts[0], parts[1], parts[2].strip(), given)


def legend_names(groups: dict[str, dict], labels: list[str] | None = None) -> dict[str, str]:
    """{group label: what legends and titles call it}. groups: {group label: {key: value}}
    (the grouping keys of each group). A group is named by the settings that differ between
    groups (all of them where there is one group), in words, joined by ", "; --label's
    renames (labels: KEY=VALUE=TEXT) replace a setting's words. BadInput for a rename that
    names no group. Two groups never get one name (their labels are used instead)."""
    renames = [parse_label(given) for given in labels or []]
    keys = list(dict.fromkeys(k for values in groups.values() for k in values))
    for rename in renames:
        _check_rename(rename, groups, keys)
    differ = [k for k in keys
              if len({shown_value(v.get(k)) for v in groups.values()}) > 1] or keys
    names = {}
    for label, values in groups.items():
        parts = []
        for key in keys:
            own = next((r.text for r in renames if r.matches(key, values.get(key))), None)
            if own is None and _moot(key, values):
                continue
            if own is not None or key in differ:
                parts.append(own if own is not None else value_words(key, values.get(key)))
        names[label] = ", ".join(parts) or label
    if len(set(names.values())) < len(names):
        return {label: label for label in groups}
    return names


def _moot(key: str, values: dict) -> bool:
    """A BN setting of a group without BN (`Keras BN, no BN` says nothing the legend
    needs: the group's runs have no BN layer to be Keras')."""
    return (key.startswith("model.bn.") and key != "model.bn.placement"
            and values.get("model.bn.placement") == "none")


def _check_rename(rename: Rename, groups: dict[str, dict], keys: list[str]) -> None:
    mine = [k for k in keys if rename.key in (k, k.rsplit(".", 1)[-1])]
    if not mine:
        raise BadInput(f"--label {rename.given}: the groups differ by {', '.join(keys)}, not "
                       f"{rename.key}{did_you_mean(rename.key, keys)}")
    values = list(dict.fromkeys(shown_value(v.get(k)) for v in groups.values() for k in mine))
    if not any(rename.matches(k, v.get(k)) for v in groups.values() for k in mine):
        raise BadInput(f"--label {rename.given}: no group has {rename.key}={rename.value} "
                       f"(values: {', '.join(values)})")


def band_note(band: str, ns, drawn: str = "shaded") -> str:
    """What a line and its band are: 'mean over 3 seeds; shaded: 95% CI of the mean'.
    ns: the groups' numbers of runs."""
    ns = sorted({int(n) for n in ns})
    runs = "" if not ns else f" {ns[0]}" if len(ns) == 1 else f" {ns[0]}-{ns[-1]}"
    seeds = "seed" if ns == [1] else "seeds"
    what = {"ci": f"; {drawn}: 95% CI of the mean", "std": f"; {drawn}: ± 1 std over seeds",
            "none": ""}[band]
    return f"mean over{runs} {seeds}{what if ns != [1] else ''}"


def check_band(band: str) -> str:
    if band not in BANDS:
        raise BadInput(f"--band {band}: expected one of {', '.join(BANDS)}")
    return band
