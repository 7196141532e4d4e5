"""Config schema: defaults, YAML loading, --set overrides, sweep expansion, error messages."""

import pytest

from bnexp import config
from bnexp.errors import ConfigError


def test_defaults_fill_every_key_and_name_comes_from_the_file(write_config):
    (spec,) = config.load(write_config("seed: 3\n", name="my-exp.yaml"))
    c = spec.config
    assert (c.name, c.seed, c.data.batch_size, c.model.arch, c.model.hidden) == (
        "my-exp", 3, 256, "lenet", [120, 84])
    assert (c.model.bn.placement, c.model.bn.momentum, c.model.bn.epsilon) == ("before", 0.9, 1e-5)
    assert (c.optimizer.name, c.optimizer.learning_rate, c.train.epochs) == ("sgd", 1.0, 10)
    assert spec.label == "my-exp_s3"


def test_mlp_gets_its_own_default_widths(write_config):
    (spec,) = config.load(write_config("model: {arch: mlp}\n"))
    assert spec.config.model.hidden == [300, 100]


def test_scientific_notation_is_a_float_as_users_expect(write_config):
    (spec,) = config.load(write_config("optimizer: {learning_rate: 1e-3}\nseed: 7\n"))
    assert spec.config.optimizer.learning_rate == pytest.approx(0.001)
    assert spec.config.seed == 7 and isinstance(spec.config.seed, int)


def test_set_overrides_convert_types(write_config):
    path = write_config("name: x\n")
    (spec,) = config.load(path, ["model.bn.placement=after", "optimizer.learning_rate=0.1",
                                 "model.hidden=[10, 20]", "model.use_bias=false", "data.limit=500"])
    m = spec.config.model
    assert (m.bn.placement, m.hidden, m.use_bias) == ("after", [10, 20], False)
    assert spec.config.optimizer.learning_rate == 0.1 and spec.config.data.limit == 500


def test_resolved_yaml_round_trips_to_the_same_config(write_config, tmp_path):
    (spec,) = config.load(write_config("model: {arch: mlp, bn: {impl: scratch}}\nseed: 4\n"))
    again = write_config(config.to_yaml(spec.config), name="resolved.yaml")
    (spec2,) = config.load(again)
    assert spec2.config == spec.config
    assert config.config_hash(spec2.config) == config.config_hash(spec.config)


def test_sweep_expands_to_grid_times_seeds_in_a_paired_design(write_config):
    specs = config.load(write_config(
        "name: sw\nsweep:\n  grid:\n    model.bn.placement: [none, before, after]\n"
        "    optimizer.learning_rate: [0.1, 1.0]\n  seeds: [0, 1]\n"))
    assert len(specs) == 12
    cells = {(s.config.model.bn.placement, s.config.optimizer.learning_rate) for s in specs}
    assert len(cells) == 6
    for cell in cells:  # every arm runs on the same seeds
        seeds = sorted(s.config.seed for s in specs
                       if (s.config.model.bn.placement, s.config.optimizer.learning_rate) == cell)
        assert seeds == [0, 1]
    assert specs[0].label == "sw_placement=none_learning_rate=0.1_s0"
    assert len({config.config_hash(s.config) for s in specs}) == 12
    assert all(s.config.sweep is None or "sweep" not in config.to_yaml(s.config) for s in specs)


def test_smoke_cuts_a_sweep_to_its_first_seed_and_a_few_batches(write_config):
    specs = config.load(write_config(
        "sweep:\n  grid:\n    model.bn.placement: [none, before]\n  seeds: [5, 6, 7]\n"))
    smoke = config.smoke_specs(specs)
    assert [s.config.seed for s in smoke] == [5, 5]
    d = smoke[0].config.data
    assert (d.limit, d.validation_size, d.test_limit, smoke[0].config.train.epochs) == (
        768, 256, 256, 1)


BAD = [
    ("model:\n  bn:\n    placment: before\n", ["model.bn.placment", "did you mean 'placement'"]),
    ("modle:\n  arch: mlp\n", ["modle", "did you mean 'model'"]),
    ("model:\n  bn:\n    placement: middle\n", ["model.bn.placement", "'middle'"]),
    ("model:\n  arch: densenet\n", ["model.arch", "expected 'lenet', 'mlp', 'resnet' or 'layers'",
                                    "'densenet'"]),
    ("model:\n  activation: relu6\n", ["model.activation", "did you mean 'relu'"]),
    ("model:\n  bn:\n    impl: torch\n", ["model.bn.impl"]),
    ("data:\n  dataset: cifar100\n", ["data.dataset"]),
    ("optimizer:\n  name: nadam\n", ["optimizer.name", "did you mean 'adam'"]),
    ("data:\n  batch_size: '256'\n", ["data.batch_size", "'256'"]),
    ("data:\n  batch_size: 0\n", ["data.batch_size", "greater than 0"]),
    ("data:\n  batch_size: 1.5\n", ["data.batch_size"]),
    ("optimizer:\n  learning_rate: -0.1\n", ["optimizer.learning_rate"]),
    ("optimizer:\n  learning_rate: fast\n", ["optimizer.learning_rate"]),
    ("train:\n  epochs: 0\n", ["train.epochs"]),
    ("model:\n  bn:\n    momentum: 1.5\n", ["model.bn.momentum"]),
    ("model:\n  bn:\n    epsilon: 0\n", ["model.bn.epsilon"]),
    ("model:\n  hidden: [100, 0]\n", ["model", "hidden"]),
    ("model:\n  use_bias: maybe\n", ["model.use_bias", "'auto'"]),
    ("model: [1, 2]\n", ["model", "dictionary"]),
    ("data:\n  limit: 100\n", ["data", "batch_size 256 is larger than limit 100"]),
    ("optimizer:\n  name: adam\n  momentum: 0.9\n", ["optimizer", "momentum must be 0"]),
    ("name: ../escape\n", ["name", "letters, digits"]),
    ("name: a/b\n", ["name"]),
    ("sweep:\n  grid:\n    model.bn.placment: [none]\n", ["sweep.grid", "model.bn.placement"]),
    ("sweep:\n  grid:\n    model.bn.placement: []\n", ["sweep", "empty list"]),
    ("sweep:\n  grid:\n    model.bn.placement: [none, sideways]\n",
     ["sweep.grid.model.bn.placement", "'sideways'"]),
    ("sweep:\n  seeds: []\n", ["sweep", "seeds"]),
    ("a: [1, 2\n", ["not valid YAML", "line"]),
    ("", ["empty"]),
    ("- just\n- a list\n", ["expected a mapping", "a list"]),
    ("x: !!python/object/apply:os.system ['echo hi']\n", ["not valid YAML"]),
    # a path no file system holds passed validate and failed only once TensorFlow was up
    ("data:\n  path: " + "a" * 4096 + "\n", ["data.path", "too long for a path"]),
    ("data:\n  path: /tmp/" + "b" * 256 + "/x\n", ["data.path", "too long for a path"]),
    ("data:\n  path: ''\n", ["data.path", "empty path"]),
    ("data:\n  path: \"a\\0b\"\n", ["data.path", "NUL"]),
]


@pytest.mark.parametrize("text,expected", BAD, ids=[b[1][0] + str(i) for i, b in enumerate(BAD)])
def test_bad_configs_raise_one_line_naming_file_and_key(write_config, text, expected):
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for fragment in expected:
        assert fragment in message


def test_set_errors_name_the_override(write_config):
    path = write_config("name: x\n")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        config.load(path, ["model.bn.placement"])
    with pytest.raises(ConfigError, match=r"--set model\.bn\.placment\).*did you mean"):
        config.load(path, ["model.bn.placment=after"])
    with pytest.raises(ConfigError, match=r"--set data\.batch_size"):
        config.load(path, ["data.batch_size=lots"])


def test_missing_file_and_folder_are_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        config.load(tmp_path)


def test_config_hash_ignores_keys_left_at_their_defaults():
    """A key added to the schema later must not change earlier runs' hashes (re-runs of a
    sweep skip them); setting a key to its default is the same run."""
    plain = config.validate({"name": "h"}, "t")
    explicit = config.validate({"name": "h", "train": {"strategy": "none"},
                                "model": {"bn": {"synchronized": False}}}, "t")
    other = config.validate({"name": "h", "model": {"bn": {"synchronized": True}}}, "t")
    assert config.config_hash(plain) == config.config_hash(explicit)
    assert config.config_hash(plain) != config.config_hash(other)


@pytest.mark.parametrize("one,other", [
    ({"model": {"bn": {"gamma_initializer": "ones"}}}, {}),
    ({"model": {"bn": {"moving_variance_initializer": {"name": "ones"}}}}, {}),
    ({"model": {"bn": {"beta_initializer": "zeros", "moving_mean_initializer": "zeros"}}}, {}),
    ({"data": {"pad_to": 28}}, {}),
    ({"model": {"arch": "layers", "layers": [{"type": "flatten"}, {"type": "dense", "units": 10,
                                                                   "kernel_initializer": {
                                                                       "name": "he_normal"}}]}},
     {"model": {"arch": "layers", "layers": [{"type": "flatten"}, {"type": "dense", "units": 10,
                                                                   "kernel_initializer":
                                                                       "he_normal"}]}}),
])
def test_one_run_spelled_two_ways_is_one_config(one, other):
    """An initializer that names model.bn's default, {name: x} without arguments, pad_to 28:
    each resolves to the plain spelling, so one run has one hash (a sweep skips it when
    done) and one resolved config (compare puts both in one group)."""
    one, other = (config.validate({"name": "h", **raw}, "t") for raw in (one, other))
    assert config.config_hash(one) == config.config_hash(other)
    assert config.to_yaml(one) == config.to_yaml(other)


def test_an_initializer_with_arguments_or_off_its_default_stays_as_given():
    bn = config.validate({"model": {"bn": {"gamma_initializer": "zeros", "beta_initializer": {
        "name": "constant", "value": 0.5}}}}, "t").model.bn
    assert bn.gamma_initializer == "zeros" and bn.beta_initializer.value == 0.5


def test_the_config_reference_is_generated_from_the_schema():
    """docs/config.md is what `python -m bnexp.config.reference` prints: change a default
    or a field doc, then regenerate it."""
    from pathlib import Path

    from bnexp.config import reference

    page = Path(__file__).resolve().parents[1] / "docs" / "config.md"
    assert page.read_text(encoding="utf-8") == reference.markdown(), (
        "docs/config.md is stale: python -m bnexp.config.reference > docs/config.md")


def test_every_config_key_is_documented_in_the_reference():
    from bnexp.config import leaf_keys, reference

    text = reference.markdown()
    for key in leaf_keys():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{key}` |")), None)
        assert row is not None, key
        assert row.rstrip(" |").split(" | ")[-1].strip(), f"{key} has no meaning in the schema"
