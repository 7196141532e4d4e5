"""The config rules, message by message: the hardened YAML loader, --set parsing, the one-line
errors (where, what was expected, what was got), sweep expansion, the config hash, smoke
cuts and the schema's small helpers. Messages are user-facing, so their full text is pinned."""

import datetime
import hashlib
import io
import json
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bnexp import config, yamltext
from bnexp.config import loading
from bnexp.config.layers import INIT_NAMES
from bnexp.config.loading import _default_name, _kind, _show, apply_overrides, parse_yaml
from bnexp.config.schema import RunSpec, _slug, cpu_devices_needed, input_shape
from bnexp.config.sections import DataConfig
from bnexp.errors import ConfigError
from tests.helpers import SYNTHETIC, synthetic_config

BASE_60 = ": a base-60 number to YAML 1.1 (1:30 reads as 90): quote it, or write the number"
LEADING_ZERO = ": a leading zero is ambiguous (YAML 1.1 reads it as octal): write the number " \
               "without it"


def error_of(path, overrides=None) -> str:
    """The message config.load raises for this file, one line per mistake, each without
    the path in front."""
    with pytest.raises(ConfigError) as info:
        config.load(path, overrides)
    lines = str(info.value).split("\n")
    assert all(line.startswith(str(path)) for line in lines), lines
    return "\n".join(line[len(str(path)):] for line in lines)


# ------------------------------------------------------------------ the YAML loader

YAML_REFUSED = [
    # aliases: a "billion laughs" bomb
    ("a: &x 1\nb: *x\n", " (line 2, column 4): aliases (*x) are not allowed in a config"),
    ("a: &anchor [1]\nb: [*anchor]\n",
     " (line 2, column 5): aliases (*anchor) are not allowed in a config"),
    # keys that are no names
    ("[1]: 2\n", " (line 1, column 1): a key must be a name, not a list or mapping"),
    ("seed: 1\n{a: 1}: 2\n", " (line 2, column 1): a key must be a name, not a list or mapping"),
    # duplicate keys, at the top and nested
    ("a: 1\na: 2\n", " (line 2, column 1): duplicate key 'a'"),
    ("model:\n  arch: mlp\n  bn: {}\n  arch: lenet\n", " (line 4, column 3): duplicate key 'arch'"),
    ("1: a\n1: b\n", " (line 2, column 1): duplicate key 1"),
    # integers with a leading zero (YAML 1.1's octal), whatever sign or underscores
    ("seed: 010\n", " (line 1, column 7): 010" + LEADING_ZERO),
    ("seed: 01\n", " (line 1, column 7): 01" + LEADING_ZERO),
    ("seed: 00\n", " (line 1, column 7): 00" + LEADING_ZERO),
    ("seed: -010\n", " (line 1, column 7): -010" + LEADING_ZERO),
    ("seed: +010\n", " (line 1, column 7): +010" + LEADING_ZERO),
    ("seed: -01\n", " (line 1, column 7): -01" + LEADING_ZERO),
    ("seed: 0_10\n", " (line 1, column 7): 0_10" + LEADING_ZERO),
    ("seed: +0_1\n", " (line 1, column 7): +0_1" + LEADING_ZERO),
    # base-60 numbers (YAML 1.1 reads 1:30 as 90), integer or float
    ("train: {epochs: 1:30}\n", " (line 1, column 17): 1:30" + BASE_60),
    ("optimizer:\n  learning_rate: -1:30.5\n", " (line 2, column 18): -1:30.5" + BASE_60),
    # an error inside a key is found where it is, before the key is refused
    ("? [010]\n: x\n", " (line 1, column 4): 010" + LEADING_ZERO),
    # malformed YAML: the problem, not the context ("while parsing a flow sequence")
    ("a: [1, 2\n", " (line 2, column 1): expected ',' or ']', but got '<stream end>'"),
    ("a: \"abc\n", " (line 2, column 1): found unexpected end of stream"),
    ("x: !!python/object/apply:os.system ['echo hi']\n",
     " (line 1, column 4): explicit tags (tag:yaml.org,2002:python/object/apply:os.system) "
     "are not allowed in a config: write the value plainly"),
    # explicit tags whose constructors fail with Python errors, not YAML ones
    ("a: !!int abc\n", " (line 1, column 4): explicit tags (tag:yaml.org,2002:int) are not "
     "allowed in a config: write the value plainly"),
    ("? !!set {a}\n: 1\n", " (line 1, column 3): explicit tags (tag:yaml.org,2002:set) are "
     "not allowed in a config: write the value plainly"),
    ("a: !local x\n", " (line 1, column 4): explicit tags (!local) are not allowed in a "
     "config: write the value plainly"),
    # a reader error has no mark and no `problem`: its first line is the message
    ("a: \x01\n", ": unacceptable character #x0001: special characters are not allowed"),
]


@pytest.mark.parametrize("text,expected", YAML_REFUSED)
def test_the_loader_refuses_with_one_exact_line(write_config, text, expected):
    path = write_config(text)
    assert error_of(path) == ": not valid YAML" + expected


NESTED_33 = "[" * 33 + "]" * 33


def test_nesting_is_limited_to_32_levels(write_config):
    """The document's root is level 1: 32 nested lists load, 33 do not."""
    assert yamltext.MAX_DEPTH == 32
    deepest = parse_yaml("[" * 32 + "]" * 32)
    for _ in range(31):
        (deepest,) = deepest
    assert deepest == []
    assert parse_yaml("a: " + "[" * 31 + "]" * 31) is not None
    with pytest.raises(yaml.YAMLError, match="nested deeper than 32 levels"):
        parse_yaml("a: " + "[" * 32 + "]" * 32)
    path = write_config(NESTED_33)
    assert error_of(path) == ": not valid YAML (line 1, column 33): nested deeper than 32 levels"


def test_nesting_depth_counts_back_down_exactly_after_each_sibling():
    """A finished sibling (the 0s) takes its level back, no more and no less."""
    flat = parse_yaml("[0, " * 31 + "]" * 31)
    assert flat[0] == 0 and len(flat) == 2
    assert parse_yaml("{a: 1, b: 2, c: " * 31 + "1" + "}" * 31)["c"]["a"] == 1
    for deep in ("[0, " * 32 + "]" * 32, "[0, " * 40 + "]" * 40,
                 "{a: 1, b: 2, c: " * 33 + "1" + "}" * 33):
        with pytest.raises(yaml.YAMLError, match="nested deeper than 32 levels"):
            parse_yaml(deep)


def test_each_document_is_counted_from_the_top():
    """A loader's count starts at 0 for each read: many reads at the limit all pass."""
    for _ in range(3):
        assert parse_yaml("[" * 32 + "]" * 32) is not None


YAML_VALUES = [
    ("1e-3", 0.001), ("1E3", 1000.0), ("1e+3", 1000.0), ("1.5", 1.5), (".5", 0.5),
    ("-.5", -0.5), ("+.5e-3", 0.0005), ("1.", 1.0), ("0.0", 0.0),
    ("0", 0), ("-0", 0), ("10", 10), ("-5", -5), ("+5", 5), ("1_000", 1000),
    ("0x1F", 31), ("-0x10", -16), ("0b101", 5),
    ("true", True), ("false", False), ("null", None), ("~", None), ("", None),
    ("[1e-3, 2]", [0.001, 2]), ("{a: 1}", {"a": 1}), ("after", "after"),
]


@pytest.mark.parametrize("text,value", YAML_VALUES)
def test_yaml_numbers_and_scalars(text, value):
    got = parse_yaml(text)
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize("text", ["010", "-010", "+010", "0_10", "01", "-01", "00", "0_0"])
def test_a_leading_zero_is_refused_by_parse_yaml(text):
    with pytest.raises(yaml.constructor.ConstructorError) as info:
        parse_yaml(text)
    assert info.value.problem == text + LEADING_ZERO
    assert info.value.problem_mark is not None and info.value.problem_mark.column == 0


@settings(max_examples=200, deadline=None)
@given(value=st.integers(-(2**70), 2**70) | st.integers(2**64, 2**20000),
       spelling=st.sampled_from(["{:d}", "0x{:x}", "0b{:b}"]))
def test_an_integer_wider_than_64_bits_is_refused_in_any_spelling(value, spelling):
    """Python refuses int() of over 4,300 decimal digits, but 0x and 0b numbers of any size
    pass, and showing one in an error (str) then raised ValueError: a traceback."""
    if spelling == "{:d}" and abs(value).bit_length() > 14_000:
        spelling = "0x{:x}"  # the test itself cannot write that many decimal digits
    text = ("-" if value < 0 else "") + spelling.format(abs(value))
    if abs(value).bit_length() <= yamltext.MAX_INT_BITS:
        assert parse_yaml(text) == value
        return
    with pytest.raises(yaml.YAMLError, match="too large|cannot read"):
        parse_yaml(text)
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, [f"seed={text}"], "c.yaml")
    assert len(str(info.value)) < 200
    if abs(value).bit_length() > 10_000:
        assert _show(value) == f"an integer of {abs(value).bit_length():,} bits"


def test_an_integer_too_wide_is_named_with_its_line_and_column(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nseed: 0x" + "f" * 17 + "\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 2, column 7\): an integer "
                       r"of 68 bits: too large \(at most 64 bits\)$"):
        config.load(path)


INITIALIZER_KEYS = ["model.bn.gamma_initializer", "model.bn.beta_initializer",
                    "model.bn.moving_mean_initializer", "model.bn.moving_variance_initializer"]


@settings(max_examples=100, deadline=None)
@given(key=st.sampled_from(INITIALIZER_KEYS),
       name=st.text(max_size=20) | st.sampled_from(typing.get_args(INIT_NAMES)))
def test_an_initializer_is_one_of_keras_names_or_refused_before_training(key, name):
    """A name was any string (`he_nromal` passed validate and would fail only once
    TensorFlow had built the model); now only Keras' names pass, as a bare name or as
    {name: ...}."""
    for value in (name, {"name": name}):
        raw = {"data": {"dataset": "synthetic"}, "model": {"bn": {key.rsplit(".")[-1]: value}}}
        if name in typing.get_args(INIT_NAMES):
            config.validate(raw, "c.yaml")
        else:
            with pytest.raises(ConfigError) as info:
                config.validate(raw, "c.yaml")
            assert key in str(info.value) and "\n" not in str(info.value)


def test_anchors_without_aliases_are_harmless(write_config):
    (spec,) = config.load(write_config("seed: &s 4\n"))
    assert spec.config.seed == 4


# ------------------------------------------------------------------ reading the file


def test_missing_file_folder_empty_and_non_mappings(write_config, tmp_path):
    missing = tmp_path / "nope.yaml"
    assert error_of(missing) == ": no such file"
    assert error_of(tmp_path) == ": is a folder, expected a YAML config file"
    assert error_of(write_config("")) == ": the file is empty; expected a mapping of config keys"
    for text, kind in [("- a\n- b\n", "a list"), ("42\n", "an integer"), ("1.5\n", "a number"),
                       ("just text\n", "a string"), ("true\n", "a boolean"),
                       ("2024-01-01\n", "date")]:
        assert error_of(write_config(text)) == (
            f": expected a mapping of config keys, got {kind}"), text


def test_a_file_over_64_kib_is_refused_unread(tmp_path):
    assert loading.MAX_BYTES == 1 << 16
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (loading.MAX_BYTES + 1))
    assert error_of(path) == ": 65,537 bytes: too large for a config (at most 65,536)"


def test_a_model_of_more_than_1000_layers_is_refused(write_config):
    """Checking a list of 10,000 layers took seconds (it grows faster than the list)."""
    layers = ", ".join(["{type: dense, units: 2}"] * 1000)
    path = write_config(f"model: {{arch: layers, layers: [{{type: flatten}}, {layers}]}}\n")
    assert error_of(path).startswith(": model.layers: list should have at most 1000 items "
                                     "after validation, not 1001")
    widths = ", ".join(["1"] * 333)  # each width: dense, bn, activation; + flatten, output
    assert error_of(write_config(f"model: {{arch: mlp, hidden: [{widths}]}}\n")) == (
        ": model: 1,001 layers once expanded: at most 1,000")
    widths = ", ".join(["1"] * 332)
    assert len(config.load(write_config(f"model: {{arch: mlp, hidden: [{widths}]}}\n"))) == 1


def test_a_model_too_big_for_memory_is_refused_before_training(write_config):
    """An MLP of three 65,536-wide layers passed `validate` and failed in TensorFlow's
    allocator (ResourceExhaustedError, exit 1)."""
    path = write_config("model: {arch: mlp, hidden: [65536, 65536, 65536]}\n")
    assert error_of(path) == (": model: 8,642,756,618 weights: at most 100,000,000 (with "
                              "gradients and optimizer slots: 138.3 GB)")
    wide = "{arch: lenet, filters: [4096, 16], kernel_size: 3, bn: {placement: none}}"
    path = write_config(f"model: {wide}\ndata: {{batch_size: 2048}}\n")
    assert error_of(path).startswith(": model: its layer outputs for one batch of 2,048 "
                                     "take 47.6 GiB")
    assert error_of(path).endswith("GiB: at most 16 GiB (lower data.batch_size)")
    assert len(config.load(write_config(f"model: {wide}\ndata: {{batch_size: 64}}\n"))) == 1
    assert len(config.load(write_config("model: {arch: mlp, hidden: [65536]}\n"))) == 1


def test_the_size_limit_is_inclusive(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "MAX_BYTES", 1000)
    text = "seed: 5\n"
    at_limit = tmp_path / "ok.yaml"
    at_limit.write_text(text + "#" * (1000 - len(text) - 1) + "\n")
    assert at_limit.stat().st_size == 1000
    assert config.read_yaml(at_limit) == {"seed": 5}
    over = tmp_path / "over.yaml"
    over.write_text(text + "#" * (1000 - len(text)) + "\n")
    assert error_of(over) == ": 1,001 bytes: too large for a config (at most 1,000)"


def test_a_sweep_of_625_million_runs_is_refused_before_it_is_listed(write_config):
    """Four keys of 50 values and 100 seeds: listing them would fill the memory."""
    assert loading.MAX_RUNS == 20_000
    reference = (Path(__file__).parents[1] / "docs" / "config.md").read_text()
    assert "at most 20,000 runs per config file" in " ".join(reference.split())
    grid = {key: list(range(1, 51)) for key in
            ["data.batch_size", "train.epochs", "data.validation_size", "optimizer.learning_rate"]}
    path = write_config(yaml.safe_dump({"sweep": {"grid": grid, "seeds": list(range(100))}}))
    assert error_of(path) == (
        ": sweep: 625,000,000 runs (50 data.batch_size x 50 data.validation_size x 50 "
        "optimizer.learning_rate x 50 train.epochs x 100 seeds): more than 20,000; "
        "split it into several configs")


def test_the_run_limit_is_inclusive(write_config, monkeypatch):
    monkeypatch.setattr(loading, "MAX_RUNS", 6)
    grid = "sweep: {grid: {train.epochs: [1, 2, 3]}, seeds: [0, 1]}\n"
    assert len(config.load(write_config(grid))) == 6
    over = write_config("sweep: {grid: {train.epochs: [1, 2, 3]}, seeds: [0, 1, 2]}\n")
    assert error_of(over) == (": sweep: 9 runs (3 train.epochs x 3 seeds): more than 6; "
                              "split it into several configs")
    without_grid = write_config("sweep: {seeds: [0, 1, 2, 3, 4, 5, 6]}\n")
    assert error_of(without_grid) == (": sweep: 7 runs (7 seeds): more than 6; split it "
                                      "into several configs")


def test_several_configs_of_one_command_share_the_run_limit(write_config, monkeypatch):
    """Each config under the limit passed, and together they took minutes and gigabytes."""
    monkeypatch.setattr(loading, "MAX_RUNS", 6)
    four = write_config("sweep: {grid: {train.epochs: [1, 2]}, seeds: [0, 1]}\n", name="a.yaml")
    three = write_config("sweep: {seeds: [5, 6, 7]}\n", name="b.yaml")
    two = write_config("sweep: {seeds: [8, 9]}\n", name="c.yaml")
    assert len(config.load_all([four, two], [])) == 6
    with pytest.raises(ConfigError) as info:
        config.load_all([four, three], [])
    assert str(info.value) == (f"{three}: sweep: 3 runs (3 seeds): more than the 2 left of 6 "
                               "for one command after the configs before it; train them in "
                               "separate commands")


def test_bytes_that_are_not_utf8_cannot_be_read(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    assert error_of(path) == ": cannot read: UnicodeDecodeError"


def test_a_config_is_read_as_utf8_whatever_the_locale(tmp_path, monkeypatch):
    """On a machine whose locale is Latin-1 (simulated: what open() falls back to), a UTF-8
    config still reads as written."""
    real = io.text_encoding
    monkeypatch.setattr(io, "text_encoding",
                        lambda encoding, stacklevel=2: "latin-1" if encoding is None
                        else real(encoding))
    path = tmp_path / "c.yaml"
    path.write_bytes("data: {path: /données}\n".encode())
    assert config.read_yaml(path) == {"data": {"path": "/données"}}


def test_a_recursion_error_while_parsing_is_one_line(write_config, monkeypatch):
    def overflow(text):
        raise RecursionError("maximum recursion depth exceeded")

    path = write_config("seed: 1\n")
    monkeypatch.setattr(loading, "parse_yaml", overflow)
    assert error_of(path) == ": not valid YAML: nested too deeply"
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, ["seed=1"], "c.yaml")
    assert str(info.value) == "c.yaml (--set seed): cannot read value '1'"


# ------------------------------------------------------------------ --set overrides


def test_overrides_read_values_as_yaml_and_leave_the_input_alone():
    raw = {"name": "x", "model": {"bn": {"placement": "none"}}}
    out = apply_overrides(raw, ["model.bn.placement=after", "optimizer.learning_rate=1e-3",
                                "model.hidden=[10, 20]", "model.use_bias=false",
                                " data.limit =500", "data.path=/a=b", "data.test_limit=",
                                "x.y.z=deep"])
    assert out == {"name": "x",
                   "model": {"bn": {"placement": "after"}, "hidden": [10, 20],
                             "use_bias": False},
                   "optimizer": {"learning_rate": 0.001},
                   "data": {"limit": 500, "path": "/a=b", "test_limit": None},
                   "x": {"y": {"z": "deep"}}}
    assert raw == {"name": "x", "model": {"bn": {"placement": "none"}}}


OVERRIDES_REFUSED = [
    (["model.bn.placement"], "config (--set 'model.bn.placement'): expected KEY=VALUE, "
                             "e.g. model.bn.placement=after"),
    (["=1"], "config (--set '=1'): expected KEY=VALUE, e.g. model.bn.placement=after"),
    ([" =1"], "config (--set ' =1'): expected KEY=VALUE, e.g. model.bn.placement=after"),
    (["model.hidden=[1, 2"], "config (--set model.hidden): cannot read value '[1, 2'"),
    ([" seed =010"], "config (--set seed): cannot read value '010': 010: a leading zero is "
                     "ambiguous (YAML 1.1 reads it as octal): write the number without it"),
    (["train.epochs=1:30"], "config (--set train.epochs): cannot read value '1:30': 1:30: a "
                            "base-60 number to YAML 1.1 (1:30 reads as 90): quote it, or write "
                            "the number"),
    (["seed=" + "[" * 40 + "]" * 40], "config (--set seed): cannot read value '"
     + "[" * 40 + "]" * 16 + "..."),
    (["k" * 100 + "=[1"], "config (--set " + "k" * 80 + "): cannot read value '[1'"),
    (["model=3", "model.arch=mlp"], "config (--set model.arch): 'model' is not a section "
                                    "(it holds 3)"),
    (["model.bn=[after]", "model.bn.placement=x"],
     "config (--set model.bn.placement): 'bn' is not a section (it holds ['after'])"),
]


@pytest.mark.parametrize("overrides,expected", OVERRIDES_REFUSED)
def test_bad_overrides_raise_one_exact_line(overrides, expected):
    with pytest.raises(ConfigError) as info:
        apply_overrides({"name": "x"}, overrides)
    assert str(info.value) == expected


def test_override_errors_name_the_file_given(write_config):
    path = write_config("name: x\n")
    assert error_of(path, ["seed"]) == " (--set 'seed'): expected KEY=VALUE, " \
                                       "e.g. model.bn.placement=after"
    assert error_of(path, ["seed=[1"]) == " (--set seed): cannot read value '[1'"


def test_overrides_that_name_the_run_are_kept_for_its_label(write_config):
    path = write_config("name: g\nsweep:\n  grid:\n    model.bn.placement: [none, after]\n"
                        "  seeds: [3, 1]\n")
    specs = config.load(path, ["model.bn.momentum=0.5", "name=zz", "sweep.seeds=[7]",
                               "data.path=a=b", "model.bn.input=true"])
    assert [s.label for s in specs] == [
        "zz_momentum=0.5_path=a-b_input=true_placement=none_s7",
        "zz_momentum=0.5_path=a-b_input=true_placement=after_s7"]
    for spec in specs:
        assert spec.overrides == {"model.bn.momentum": 0.5, "data.path": "a=b",
                                  "model.bn.input": True}
        assert spec.config.data.path == "a=b" and spec.config.name == "zz"
    (one,) = config.load(write_config("name: g\n"), ["seed=5", "train.epochs=2"])
    assert one.label == "g_epochs=2_s5" and one.overrides == {"train.epochs": 2}


@pytest.mark.parametrize("override, hidden", [
    ("seed=4", "(--set seed): sweep.seeds sets every run's seed"),
    ("model.bn.placement=before", "(--set model.bn.placement): sweep.grid sets "
                                  "model.bn.placement in every run"),
    ("model.bn={placement: before}", "(--set model.bn): sweep.grid sets model.bn.placement"),
    ("model={bn: {placement: before}}", "(--set model): sweep.grid sets model.bn.placement"),
])
def test_an_override_the_sweep_would_hide_in_every_run_is_refused(write_config, override,
                                                                   hidden):
    """The grid's cells and sweep.seeds are set after --set: the value was ignored."""
    path = write_config("name: g\nsweep:\n  grid:\n    model.bn.placement: [none, after]\n"
                        "  seeds: [3, 1]\n")
    with pytest.raises(ConfigError) as e:
        config.load(path, [override])
    assert str(e.value).startswith(f"{path} {hidden}")
    assert str(e.value).endswith("so this value would be ignored; " + (
        "set sweep.seeds instead" if override.startswith("seed") else
        "change the config's sweep.grid instead"))
    assert len(config.load(path, ["model.bn={momentum: 0.5}", "sweep.seeds=[4]"])) == 2
    assert len(config.load(path, ["model={bn: {momentum: 0.5}, activation: relu}"])) == 4
    limits = write_config("name: g\nsweep:\n  grid:\n    data.limit: [1000, 2000]\n")
    with pytest.raises(ConfigError, match=r"\(--set data\): sweep.grid sets data.limit"):
        config.load(limits, ["data={limit: 500, path: 'a=b'}"])  # the key ends at the first =


# ------------------------------------------------------------------ validation messages

INVALID = [
    # wrong types: what was expected, what was got and of which kind
    ("data: [1, 2]\n", ": data: input should be a valid dictionary; got [1, 2] (a list)"),
    ("model: {bn: 3}\n", ": model.bn: input should be a valid dictionary; got 3 (an integer)"),
    ("data: {path: 5}\n", ": data.path: input should be a valid string; got 5 (an integer)"),
    ("data: {path: {a: 1}}\n",
     ": data.path: input should be a valid string; got {'a': 1} (a mapping)"),
    ("name: [1]\n", ": name: input should be a valid string; got [1] (a list)"),
    ("seed: 2024-01-01\n", ": seed: input should be a valid integer; got 2024-01-01 (date)"),
    ("seed: 1e-3\n", ": seed: input should be a valid integer; got 0.001 (a number)"),
    ("seed: null\n", ": seed: input should be a valid integer; got None (null)"),
    ("model: {bn: {input: 'yes'}}\n", ": model.bn.input: input should be a valid boolean; "
                                      "got 'yes'"),
    ("train: {epochs: true}\n", ": train.epochs: input should be a valid integer; "
                                "got True (a boolean)"),
    ("model: {hidden: [10, a]}\n", ": model.hidden[1]: input should be a valid integer; got 'a'"),
    ("model: {filters: [6, [1]]}\n",
     ": model.filters[1]: input should be a valid integer; got [1] (a list)"),
    # ranges
    ("data: {batch_size: 0}\n",
     ": data.batch_size: input should be greater than 0; got 0 (an integer)"),
    ("seed: -1\n", ": seed: input should be greater than or equal to 0; got -1 (an integer)"),
    ("model: {bn: {momentum: 1}}\n",
     ": model.bn.momentum: input should be less than 1; got 1 (an integer)"),
    ("optimizer: {learning_rate: .inf}\n",
     ": optimizer.learning_rate: input should be a finite number; got inf (a number)"),
    # literals: the choices, and a near one
    ("model: {bn: {placement: middle}}\n",
     ": model.bn.placement: expected 'none', 'before' or 'after'; got 'middle'"),
    ("model: {activation: relu6}\n", ": model.activation: expected 'relu', 'sigmoid', 'elu', "
                                     "'tanh' or 'selu'; got 'relu6' (did you mean 'relu'?)"),
    ("optimizer: {name: 3}\n",
     ": optimizer.name: expected 'sgd', 'adam', 'adamw' or 'rmsprop'; got 3 (an integer)"),
    # a literal or a boolean: the union's branch names are no part of the key
    ("model: {use_bias: maybe}\n", ": model.use_bias: expected 'auto', true or false; "
                                   "got 'maybe'"),
    ("model: {use_bias: 3}\n", ": model.use_bias: expected 'auto', true or false; "
                               "got 3 (an integer)"),
    ("train: {jit_compile: 3}\n", ": train.jit_compile: expected 'auto', 'except_conv', true or "
                                  "false; got 3 (an integer)"),
    ("train: {jit_compile: except}\n", ": train.jit_compile: expected 'auto', 'except_conv', "
                                       "true or false; got 'except' (did you mean "
                                       "'except_conv'?)"),
    # the name's pattern
    ("name: a/b\n", ": name: expected letters, digits, '.', '_' or '-', starting with a letter "
                    "or digit; got 'a/b'"),
    ("name: ''\n", ": name: expected letters, digits, '.', '_' or '-', starting with a letter "
                   "or digit; got ''"),
    # unknown keys, with a hint where one is near, wherever they are
    ("sed: 1\n", ": sed: unknown key (did you mean 'seed'?)"),
    ("none: 1\n", ": none: unknown key"),
    ("train: {float: 1}\n", ": train.float: unknown key"),
    ("data: {batch: 32}\n", ": data.batch: unknown key (did you mean 'batch_size'?)"),
    ("sweep: {seed: [1]}\n", ": sweep.seed: unknown key (did you mean 'seeds'?)"),
    ("model: {bn: {gamma_initializer: {name: ones, foo: 1}}}\n",
     ": model.bn.gamma_initializer.foo: unknown key"),
    ("model: {arch: layers, layers: [{type: dense, units: 10, foo: 1}]}\n",
     ": model.layers[0].dense.foo: unknown key"),
    ("model: {bn: {gamma_initializer: {name: random_normal, stddev: x}}}\n",
     ": model.bn.gamma_initializer.stddev: input should be a valid number; got 'x'"),
    # a section's own rule: the message alone, nothing "got"
    ("data: {pad_to: 32, resize_to: 64}\n", ": data: pad_to and resize_to exclude each other"),
    ("data: {limit: 100}\n", ": data: batch_size 256 is larger than limit 100: not one full "
                             "batch to train on"),
    ("optimizer: {name: adam, momentum: 0.9}\n",
     ": optimizer: momentum must be 0 for adam (Adam's beta_1 plays that role)"),
    ("model: {layers: [{type: dense, units: 10}]}\n",
     ": model: layers is given with arch: layers, and only then"),
    ("sweep: {seeds: [1, 1]}\n",
     ": sweep: seeds lists a seed twice (the same run would train twice)"),
    ("sweep: {grid: {seed: [1]}}\n", ": sweep: grid: seed and name are not grid keys (use "
                                     "sweep.seeds; the name is the config's)"),
    # the whole config's rule: no location of its own
    ("data: {batch_size: 2}\ntrain: {strategy: mirrored, replicas: 4}\n",
     ": data.batch_size: 2 is fewer examples than train.replicas (4) need, one each"),
    # sweep grid keys
    ("sweep: {grid: {model.bn.placment: [none]}}\n",
     ": sweep.grid: 'model.bn.placment' is not a config key (did you mean "
     "'model.bn.placement'?)"),
    ("sweep: {grid: {model.bn.placement: [none, sideways]}}\n",
     " (sweep.grid.model.bn.placement): model.bn.placement: expected 'none', 'before' or "
     "'after'; got 'sideways'"),
    ("sweep: {grid: {model.bn.gamma_initializer: [{name: random_normal, stddev: x}]}}\n",
     " (sweep.grid.model.bn.gamma_initializer): model.bn.gamma_initializer.stddev: input should "
     "be a valid number; got 'x'"),
    ("sweep: {grid: {data.limit: [100]}}\n",
     ": data: batch_size 256 is larger than limit 100: not one full batch to train on"),
    # two cells that are one run: a value listed twice, or two spellings of one value
    ("sweep: {grid: {model.bn.momentum: [0.9, 0.9]}}\n",
     ": sweep.grid: the cells {'model.bn.momentum': 0.9} and {'model.bn.momentum': 0.9} "
     "are the same run (it would train twice)"),
    ("sweep: {grid: {optimizer.learning_rate: [1, 0.5, 1.0]}}\n",
     ": sweep.grid: the cells {'optimizer.learning_rate': 1} and "
     "{'optimizer.learning_rate': 1.0} are the same run (it would train twice)"),
    ("sweep: {grid: {data.path: [/tmp/a/b, /tmp/a//b/.]}}\n",
     ": sweep.grid: the cells {'data.path': '/tmp/a/b'} and {'data.path': '/tmp/a//b/.'} "
     "are the same run (it would train twice)"),
]


@pytest.mark.parametrize("text,expected", INVALID)
def test_invalid_configs_raise_one_exact_line(write_config, text, expected):
    assert error_of(write_config(text)) == expected


OVERRIDE_ORIGIN = [
    # the error is at the key set
    ("name: x\n", ["data.batch_size=a=b"],
     " (--set data.batch_size): data.batch_size: input should be a valid integer; got 'a=b'"),
    # ... below it
    ("name: x\n", ["model.bn={placement: middle}"],
     " (--set model.bn): model.bn.placement: expected 'none', 'before' or 'after'; got 'middle'"),
    # ... or at the section holding it
    ("name: x\n", ["data.limit=10"],
     " (--set data.limit): data: batch_size 256 is larger than limit 10: not one full batch to "
     "train on"),
    ("name: x\n", ["model.bn.placment=after"],
     " (--set model.bn.placment): model.bn.placment: unknown key (did you mean 'placement'?)"),
    # a key that only begins like the one set is not its (the key set: a mistake too)
    ("data: {batch_size: 0}\n", ["data.batch=1"],
     ": data.batch_size: input should be greater than 0; got 0 (an integer)\n"
     " (--set data.batch): data.batch: unknown key (did you mean 'batch_size'?)"),
    ("model: {bn: {placement: middle}}\n", ["model.b=1"],
     ": model.bn.placement: expected 'none', 'before' or 'after'; got 'middle'\n"
     " (--set model.b): model.b: unknown key (did you mean 'bn'?)"),
    ("name: x\n", ["model.bn.momentum=0.5", "seed=-1"],
     " (--set seed): seed: input should be greater than or equal to 0; got -1 (an integer)"),
    ("data: {limit: 100}\n", ["model.bn.momentum=0.5"],
     ": data: batch_size 256 is larger than limit 100: not one full batch to train on"),
]


@pytest.mark.parametrize("text,overrides,expected", OVERRIDE_ORIGIN)
def test_errors_name_the_override_that_caused_them(write_config, text, overrides, expected):
    assert error_of(write_config(text), overrides) == expected


def test_a_grid_cell_error_names_the_override_it_came_from(write_config):
    path = write_config("sweep: {grid: {data.limit: [100]}}\n")
    assert error_of(path, ["data.batch_size=256"]) == (
        " (--set data.batch_size): data: batch_size 256 is larger than limit 100: not one full "
        "batch to train on")


def test_long_values_are_cut_in_messages(write_config):
    path = write_config("name: x\n")
    assert error_of(path, ['data.batch_size="' + "a" * 70 + '"']) == (
        " (--set data.batch_size): data.batch_size: input should be a valid integer; got '"
        + "a" * 56 + "...")


SHOWN = [
    ("abc", "'abc'"), ("", "''"), (0, "0 (an integer)"), (None, "None (null)"),
    (True, "True (a boolean)"), (1.5, "1.5 (a number)"), ([1, 2], "[1, 2] (a list)"),
    ({"a": 1}, "{'a': 1} (a mapping)"), (datetime.date(2024, 1, 2), "2024-01-02 (date)"),
    ("a" * 57, "'" + "a" * 57 + "'"),  # 59 characters: shown whole
    ("a" * 58, "'" + "a" * 56 + "..."),  # 60: cut to 60
    ("a" * 100, "'" + "a" * 56 + "..."),
    (10**70, str(10**70)[:57] + "..."),
]


@pytest.mark.parametrize("value,shown", SHOWN)
def test_show_quotes_strings_names_other_kinds_and_cuts_at_60(value, shown):
    assert _show(value) == shown
    assert len(shown) < 60 or len(shown) == 60 and shown.endswith("...")


@pytest.mark.parametrize("value,kind", [
    ({}, "a mapping"), ([], "a list"), ("", "a string"), (False, "a boolean"),
    (0, "an integer"), (0.0, "a number"), (None, "null"),
    (datetime.date(2024, 1, 1), "date"), ((1,), "tuple"), (b"x", "bytes"),
])
def test_kind_names_a_value_as_a_user_reads_it(value, kind):
    assert _kind(value) == kind


# ------------------------------------------------------------------ default names and labels


@pytest.mark.parametrize("filename,name", [
    ("my-exp.yaml", "my-exp"), (" my exp .yaml", "my-exp"), ("MyExp.yaml", "MyExp"),
    ("Xray.yaml", "Xray"), ("v1.2_a.yaml", "v1.2_a"), (".hidden.yaml", "hidden"),
    ("--a b!--.yaml", "a-b"), ("!!!.yaml", "bnexp"), ("é.yaml", "bnexp"),
    ("a" * 100 + ".yaml", "a" * 80),
])
def test_default_name_is_the_file_stem_made_safe(filename, name):
    assert _default_name(Path("/some/dir") / filename) == name


def test_the_default_name_reaches_the_config(write_config):
    (spec,) = config.load(write_config("seed: 1\n", name="My exp!.yaml"))
    assert spec.config.name == "My-exp" and spec.label == "My-exp_s1"


@pytest.mark.parametrize("value,slug", [
    (True, "true"), (False, "false"), ("a b ", "a-b"), ("a/b", "a-b"), ("ABC", "ABC"),
    ("Xa", "Xa"), ("x-", "x"), ("-.a.-", ".a."), ("", "x"), ("///", "x"), (0.1, "0.1"),
    ([10, 20], "10-20"), ({"name": "ones"}, "name-ones"), ("a_b", "a-b"),
])
def test_slug_writes_a_value_for_a_folder_name(value, slug):
    assert _slug(value) == slug


def test_label_joins_name_overrides_cell_and_seed():
    cfg = synthetic_config()
    spec = RunSpec(cfg, cell={"model.bn.input": False}, overrides={"seed": 9, "optimizer.lr": 1})
    assert spec.label == "t_lr=1_input=false_s0"


# ------------------------------------------------------------------ sweeps


def test_sweep_order_is_grid_product_then_seeds_as_listed(write_config):
    path = write_config("name: sw\nsweep:\n  grid:\n    model.bn.placement: [none, after]\n"
                        "    optimizer.learning_rate: [0.1, 1.0]\n  seeds: [3, 1]\n")
    specs = config.load(path)
    assert [s.label for s in specs] == [
        "sw_placement=none_learning_rate=0.1_s3", "sw_placement=none_learning_rate=0.1_s1",
        "sw_placement=none_learning_rate=1.0_s3", "sw_placement=none_learning_rate=1.0_s1",
        "sw_placement=after_learning_rate=0.1_s3", "sw_placement=after_learning_rate=0.1_s1",
        "sw_placement=after_learning_rate=1.0_s3", "sw_placement=after_learning_rate=1.0_s1"]
    assert specs[0].cell == {"model.bn.placement": "none", "optimizer.learning_rate": 0.1}
    assert all(s.config.sweep is None for s in specs)
    assert all(s.overrides == {} for s in specs)


def test_without_seeds_a_sweep_runs_on_the_configs_seed(write_config):
    specs = config.load(write_config("seed: 5\nsweep: {grid: {model.arch: [mlp, lenet]}}\n"))
    assert [(s.config.seed, s.config.model.hidden) for s in specs] == [
        (5, [300, 100]), (5, [120, 84])]
    assert all(s.config.sweep is None for s in specs)


def test_expand_leaves_the_raw_mapping_alone():
    raw = {"name": "g", "model": {"bn": {"placement": "none"}},
           "sweep": {"grid": {"model.bn.placement": ["after", "before"]}}}
    before = json.dumps(raw, sort_keys=True)
    specs = config.expand(raw, "c.yaml")
    assert [s.config.model.bn.placement for s in specs] == ["after", "before"]
    assert json.dumps(raw, sort_keys=True) == before


def test_a_grid_key_through_a_section_object_is_refused():
    data = DataConfig(dataset="synthetic", batch_size=8, validation_size=0)
    raw = {"name": "g", "data": data, "sweep": {"grid": {"data.batch_size": [4]}}}
    with pytest.raises(ConfigError) as info:
        config.expand(raw, "c.yaml")
    assert str(info.value) == (f"sweep.grid.data.batch_size: 'data' is not a section "
                               f"(it holds {data!r})")


# ------------------------------------------------------------------ hash, YAML, smoke


def _digest(tree: dict) -> str:
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]


def test_config_hash_is_sorted_json_of_the_keys_off_their_defaults():
    """Hashes are stored in finished runs' summaries: they must never change."""
    cfg = config.validate({"name": "h", "seed": 3, "model": {"bn": {"placement": "after"}}}, "t")
    expected = {"model": {"bn": {"placement": "after"}, "hidden": [120, 84]}, "name": "h",
                "seed": 3}
    assert config.config_hash(cfg) == _digest(expected) == "7b187a8aca0b4a90"
    assert config.config_hash(config.validate({}, "t")) == _digest({})
    same = config.validate({"model": {"hidden": [120, 84]}, "train": {"epochs": 10}}, "t")
    assert config.config_hash(same) == _digest({})


def test_config_hash_leaves_the_sweep_out():
    plain = config.validate({"name": "h"}, "t")
    swept = config.validate({"name": "h", "sweep": {"seeds": [1, 2]}}, "t")
    assert swept.sweep is not None
    assert config.config_hash(swept) == config.config_hash(plain)
    assert len(config.config_hash(plain)) == 16


def test_to_yaml_keeps_the_schema_order_and_leaves_the_sweep_out():
    cfg = config.validate({"name": "y", "seed": 2, "sweep": {"seeds": [1, 2]}}, "t")
    text = config.to_yaml(cfg)
    top = [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")]
    assert top == ["name", "seed", "data", "model", "optimizer", "train", "diagnostics"]
    assert text.startswith("name: y\nseed: 2\ndata:\n  dataset: fashion_mnist\n  path: null\n")
    assert "sweep" not in text


def test_smoke_cuts_to_three_batches_of_one_epoch():
    cfg = synthetic_config(data={"limit": 1000, "test_limit": 1000})
    small = config.smoke(cfg)
    d = small.data
    assert (d.limit, d.validation_size, d.test_limit, small.train.epochs) == (150, 50, 50, 1)
    d = config.smoke(synthetic_config(data={"limit": 60, "test_limit": 20})).data
    assert (d.limit, d.test_limit) == (60, 20)
    d = config.smoke(synthetic_config()).data
    assert (d.limit, d.test_limit) == (150, 50)
    assert cfg.data.limit == 1000 and cfg.train.epochs == 2


def test_smoke_cuts_a_batch_of_large_images_to_the_pixels_of_256_small_ones():
    """Notebook 001's batch of 128 images of 224x224 (one step: 2.6 s) smokes in batches
    of 4; a batch of 28x28 images of up to 256 stays as it is; mirrored keeps one image a
    replica; the cut batch is what limit and the evaluation sets follow."""
    def smoked(**data):
        return config.smoke(synthetic_config(data=data)).data

    d = smoked(batch_size=128, resize_to=224, limit=5000)
    assert (d.batch_size, d.limit, d.validation_size, d.test_limit) == (4, 12, 4, 4)
    assert type(d.batch_size) is int
    assert smoked(batch_size=256).batch_size == 256
    assert smoked(batch_size=512, limit=5000).batch_size == 256
    assert smoked(batch_size=256, pad_to=32).batch_size == 196  # 256 * 28**2 // 32**2
    assert smoked(batch_size=2, resize_to=256).batch_size == 2
    mirrored = synthetic_config(data={"batch_size": 128, "resize_to": 256},
                                train={"strategy": "mirrored", "replicas": 6})
    assert config.smoke(mirrored).data.batch_size == 6
    assert config.smoke(config.smoke(mirrored)) == config.smoke(mirrored)


def test_smoke_specs_keep_each_cell_on_its_first_seed(write_config):
    path = write_config(
        "data: {dataset: synthetic, batch_size: 50, validation_size: 200}\n"
        "sweep:\n  grid:\n    model.bn.placement: [none, before]\n  seeds: [5, 6]\n")
    specs = config.load(path)
    smoke = config.smoke_specs(specs)
    assert [(s.cell, s.config.seed) for s in smoke] == [
        ({"model.bn.placement": "none"}, 5), ({"model.bn.placement": "before"}, 5)]
    assert [s.label for s in smoke] == ["c_placement=none_s5", "c_placement=before_s5"]
    # every run keeps the file it came from (errors about its data or model name it)
    assert [s.source for s in specs + smoke] == [str(path)] * 6
    assert config.RunSpec(specs[0].config).source == "config"


def test_smoke_runs_that_cutting_made_equal_are_one(write_config):
    """A grid over train.epochs (or data.limit) made equal smoke runs, which --smoke then
    refused as "the same run would train twice"."""
    path = write_config("data: {dataset: synthetic, batch_size: 50, validation_size: 200}\n"
                        "sweep:\n  grid:\n    train.epochs: [2, 3]\n"
                        "    data.limit: [1000, 2000]\n")
    assert len(config.load_all([path], [])) == 4
    (smoke,) = config.load_all([path], [], smoke_runs=True)
    assert smoke.cell == {"train.epochs": 2, "data.limit": 1000} and smoke.config.train.epochs == 1
    with pytest.raises(ConfigError, match="is also a run of"):  # without --smoke: refused
        config.load_all([path, path], [])
    placements = write_config("data: {dataset: synthetic, batch_size: 50, validation_size: 200}\n"
                              "sweep:\n  grid:\n    model.bn.placement: [none, before]\n"
                              "    train.epochs: [2, 3]\n")
    smokes = config.load_all([placements], [], smoke_runs=True)  # a twin comes before "before"
    assert [s.cell["model.bn.placement"] for s in smokes] == ["none", "before"]


# ------------------------------------------------------------------ schema helpers


def test_input_shape_follows_padding_or_resizing():
    assert input_shape(DataConfig()) == (28, 28, 1)
    assert input_shape(DataConfig(pad_to=32)) == (32, 32, 1)
    assert input_shape(DataConfig(resize_to=64)) == (64, 64, 1)


def test_cpu_devices_needed_counts_only_mirrored_runs():
    plain = synthetic_config()
    wide = synthetic_config(train={"replicas": 8})
    four = synthetic_config(train={"strategy": "mirrored", "replicas": 4})
    default = synthetic_config(train={"strategy": "mirrored"})
    assert cpu_devices_needed([]) == 0
    assert cpu_devices_needed([plain, wide]) == 0
    assert cpu_devices_needed([default]) == 2
    assert cpu_devices_needed([four]) == 4
    assert cpu_devices_needed([plain, wide, default, four]) == 4


# ---------------------------------------------------------------- fixed after review


@pytest.mark.parametrize("text", ["09", "-08", "09e2", "+0_7"])
def test_a_float_looking_like_an_integer_with_a_leading_zero_is_refused(text):
    with pytest.raises(yaml.YAMLError, match="a leading zero is ambiguous"):
        loading.parse_yaml(text)


@pytest.mark.parametrize("text, value", [(".5e3", 500.0), (".5e-1", 0.05), ("00.5", 0.5),
                                         ("0e5", 0.0), ("-.5", -0.5)])
def test_floats_with_a_dot_or_an_unsigned_exponent_are_numbers(text, value):
    assert loading.parse_yaml(text) == value


def test_an_error_in_a_list_item_names_the_override_that_set_it(write_config):
    path = write_config("model: {hidden: [10]}\n")
    with pytest.raises(ConfigError) as error:
        loading.load(path, ["model.hidden=[10, a]"])
    assert str(error.value).startswith(f"{path} (--set model.hidden): model.hidden[1]: ")


def test_smoke_runs_keep_the_overrides_in_their_labels(write_config):
    path = write_config(SYNTHETIC + "sweep: {seeds: [0, 1]}\n")
    specs = loading.load(path, ["optimizer.learning_rate=0.05"])
    (smoked,) = config.smoke_specs(specs)
    assert smoked.overrides == specs[0].overrides == {"optimizer.learning_rate": 0.05}
    assert smoked.label == specs[0].label and "learning_rate=0.05" in smoked.label


def test_the_non_specific_tag_is_allowed():
    """`! 5` carries YAML's non-specific tag `!`: no explicit type, so it is not refused
    (PyYAML reads it as it reads the value untagged)."""
    assert loading.parse_yaml("a: ! 5\n") == {"a": 5}


def test_a_constructor_failing_with_a_python_error_is_a_yaml_error(monkeypatch):
    def broken(self, node):
        raise ValueError("boom")

    monkeypatch.setattr(yamltext._Loader, "yaml_constructors",
                        {**yamltext._Loader.yaml_constructors,
                         "tag:yaml.org,2002:float": broken})
    with pytest.raises(yaml.YAMLError) as error:
        loading.parse_yaml("a: 1.5\n")
    assert str(error.value) == "cannot read a value (ValueError)"


def test_a_run_asked_for_by_two_files_or_one_file_twice_is_refused_before_anything(tmp_path):
    from typer.testing import CliRunner

    from bnexp.cli import app

    a = tmp_path / "a.yaml"
    a.write_text("data: {dataset: synthetic}\n")
    b = tmp_path / "b.yaml"
    b.write_text("name: a\ndata: {dataset: synthetic}\nsweep: {seeds: [1, 0]}\n")
    for files, message in (
            ([a, a], f"error: {a}: run a_s0 is also a run of {a} (the same run would train "
                     "twice)"),
            ([a, b], f"error: {b}: run a_s0 is also a run of {a} (the same run would train "
                     "twice)")):
        result = CliRunner().invoke(app, ["train", *map(str, files), "--runs-dir",
                                          str(tmp_path / "runs")])
        assert result.exit_code == 2
        assert result.output.strip() == message
        assert not (tmp_path / "runs").exists()


def test_load_all_keeps_file_order_and_cuts_each_file_to_its_first_seed_under_smoke(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("data: {dataset: synthetic}\nsweep: {seeds: [3, 4]}\n")
    b = tmp_path / "b.yaml"
    b.write_text("data: {dataset: synthetic}\nsweep: {seeds: [7, 8]}\n")
    assert [s.label for s in config.load_all([b, a], [])] == ["b_s7", "b_s8", "a_s3", "a_s4"]
    smoke = config.load_all([b, a], ["train.epochs=5"], True)
    assert [(s.label, s.source, s.config.train.epochs) for s in smoke] == [
        ("b_epochs=5_s7", str(b), 1), ("a_epochs=5_s3", str(a), 1)]
