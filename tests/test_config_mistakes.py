"""Every mistake of a config at once (issue 32, point 4): one line per mistake, each
naming the file and the key, through the Python API, `bnexp validate` and `bnexp train`;
a config of one mistake is still exactly one line, and a config of hundreds is at most
MAX_MISTAKES lines and a count. No TensorFlow."""

import pickle

import pytest
from typer.testing import CliRunner

from bnexp import config
from bnexp.cli import app
from bnexp.config.messages import MAX_MISTAKES
from bnexp.errors import MAX_MESSAGE, BadInput, ConfigError


def mistakes(path, overrides=None) -> list[str]:
    """The lines config.load refuses `path` with, each without the path in front."""
    with pytest.raises(ConfigError) as info:
        config.load(path, overrides)
    lines = str(info.value).split("\n")
    assert lines == list(info.value.args)
    assert all(line.startswith(str(path)) for line in lines), lines
    return [line[len(str(path)):] for line in lines]


def test_two_wrong_keys_of_one_section_are_both_named(write_config):
    """The issue's case: `renorm` was named, `renorm_clipping` in the same file was not."""
    path = write_config("model:\n  bn:\n    renorm: maybe\n    renorm_clipping: 5\n")
    assert mistakes(path) == [
        ": model.bn.renorm: input should be a valid boolean; got 'maybe'",
        ": model.bn.renorm_clipping: input should be a valid dictionary; got 5 (an integer)",
    ]


def test_an_unknown_key_and_a_wrong_type_are_both_named(write_config):
    path = write_config("data:\n  batch_sise: 64\noptimizer:\n  learning_rate: fast\n")
    assert mistakes(path) == [  # in the schema's order
        ": data.batch_sise: unknown key (did you mean 'batch_size'?)",
        ": optimizer.learning_rate: input should be a valid number; got 'fast'",
    ]


def test_one_mistake_is_one_line_even_where_pydantic_tries_several_branches(write_config):
    """model.use_bias is 'auto' or a boolean: pydantic reports both branches; the user
    made one mistake."""
    assert mistakes(write_config("model: {use_bias: maybe}\n")) == [
        ": model.use_bias: expected 'auto', true or false; got 'maybe'"]


def test_mistakes_in_several_sections_and_list_items_each_have_their_line(write_config):
    path = write_config("seed: -1\nmodel:\n  hidden: [a, 3, b]\n  arch: lenett\n"
                        "train: {epochs: ten}\n")
    assert mistakes(path) == [
        ": seed: input should be greater than or equal to 0; got -1 (an integer)",
        ": model.arch: expected 'lenet', 'mlp', 'resnet' or 'layers'; got 'lenett' "
        "(did you mean 'lenet'?)",
        ": model.hidden[0]: input should be a valid integer; got 'a'",
        ": model.hidden[2]: input should be a valid integer; got 'b'",
        ": train.epochs: input should be a valid integer; got 'ten'",
    ]


def test_each_line_names_where_its_mistake_came_from(write_config):
    """A --set, a grid value in one cell and another grid value in another cell: all
    named, each with its origin, each once (the seeds repeat the cells)."""
    path = write_config("sweep:\n  grid:\n    model.bn.placement: [none, sideways]\n"
                        "    optimizer.learning_rate: [0.1, x]\n  seeds: [0, 1]\n")
    assert mistakes(path, ["train.epochs=ten"]) == [
        " (--set train.epochs): train.epochs: input should be a valid integer; got 'ten'"]
    assert mistakes(path) == [
        " (sweep.grid.optimizer.learning_rate): optimizer.learning_rate: input should be a "
        "valid number; got 'x'",
        " (sweep.grid.model.bn.placement): model.bn.placement: expected 'none', 'before' or "
        "'after'; got 'sideways'",
    ]


def test_a_rule_across_keys_comes_with_the_other_mistakes_of_its_validation(write_config):
    """A section's own rule (renorm_clipping with kind: batch) is checked with the fields
    of other sections; the checks that need a valid schema (shapes) come only after."""
    path = write_config("model:\n  arch: nope\n  bn: {kind: batch, renorm_clipping: {}}\n")
    assert mistakes(path) == [
        ": model.arch: expected 'lenet', 'mlp', 'resnet' or 'layers'; got 'nope'",
        ": model.bn: renorm_clipping does not apply to kind: batch (it is batch renorm's)",
    ]


def test_hundreds_of_mistakes_are_the_first_twenty_and_a_count(write_config):
    path = write_config("model:\n  hidden: [" + ", ".join(["x" * 150] * 300) + "]\n")
    lines = mistakes(path)
    assert len(lines) == MAX_MISTAKES + 1
    assert lines[0].startswith(": model.hidden[0]: input should be a valid integer")
    assert lines[MAX_MISTAKES - 1].startswith(f": model.hidden[{MAX_MISTAKES - 1}]: ")
    assert lines[-1] == f": ... and {300 - MAX_MISTAKES} more mistakes"
    assert all(len(line) <= MAX_MESSAGE for line in lines)


@pytest.mark.parametrize("command", ["validate", "train"])
def test_the_cli_prints_one_error_line_per_mistake_and_exits_2(write_config, tmp_path,
                                                              command):
    path = write_config("model:\n  bn:\n    renorm: maybe\n    renorm_clipping: 5\nbogus: 1\n")
    runs_dir = tmp_path / "runs"
    args = [command, str(path)] + (["--runs-dir", str(runs_dir)] if command == "train" else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.stdout == ""
    assert "Traceback" not in result.output
    assert result.stderr.splitlines() == [
        f"error: {path}: model.bn.renorm: input should be a valid boolean; got 'maybe'",
        f"error: {path}: model.bn.renorm_clipping: input should be a valid dictionary; got 5 "
        "(an integer)",
        f"error: {path}: bogus: unknown key",
    ]
    assert not runs_dir.exists()


def test_a_config_of_one_mistake_is_still_exactly_one_line(write_config):
    path = write_config("model:\n  bn:\n    placment: before\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: model.bn.placment: unknown key (did you mean 'placement'?)"]


def test_the_api_raises_the_same_lines(tmp_path):
    import bnexp

    with pytest.raises(bnexp.BadInput) as info:
        bnexp.train({"seed": "x", "modle": {}}, runs_dir=tmp_path / "r")
    assert str(info.value).split("\n") == [
        "config (dict): seed: input should be a valid integer; got 'x'",
        "config (dict): modle: unknown key (did you mean 'model'?)",
    ]
    assert not (tmp_path / "r").exists()


def test_each_mistake_stays_one_line_whatever_it_quotes_and_survives_pickling():
    """A key or value with a line break is shown escaped: it never forges a line (a
    worker process sends its errors pickled)."""
    with pytest.raises(ConfigError) as info:
        config.validate({"a\nb": 1, "seed": "x\nerror: forged"}, "c.yaml")
    lines = str(info.value).split("\n")
    assert lines == ["c.yaml: seed: input should be a valid integer; got 'x\\nerror: forged'",
                     "c.yaml: a\\nb: unknown key"]
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is ConfigError and again.args == info.value.args
    assert str(BadInput("one\ntwo")) == "one\\ntwo"  # one message: still one line
