"""Run folder names (issue 32, point 3): whatever the grid values, a name keeps the seed
and the start time; what does not fit is a short hash of itself, the full values stay in
config.yaml, and a name that fits is what it always was. No TensorFlow."""

import hashlib
import re

import yaml

from bnexp import config, runs
from bnexp.config.schema import LABEL_HASH, LABEL_KEEP, LABEL_MAX, fitted
from bnexp.runs.plan import plan
from tests.helpers import fake_run_rows

DEEP = [100] * 49 + [10]  # a depth-50 MLP: its slug alone is 200 characters
DEEPER = [100] * 48 + [10, 10]  # differs from DEEP only past the 200th character
SWEEP = ("name: deep\ndata: {dataset: synthetic, batch_size: 50, validation_size: 200}\n"
         f"model: {{arch: mlp}}\nsweep:\n  grid:\n    model.hidden: [{DEEP}, {DEEPER}]\n"
         "  seeds: [0, 4294967295]\n")


class Skips:
    def __init__(self):
        self.skipped = []

    def run_skipped(self, path, status):
        self.skipped.append(path)


def test_a_long_grid_value_keeps_the_seed_and_hashes_what_does_not_fit(write_config):
    """The issue's case: a depth-50 grid value cut the name at 200 characters, losing the
    seed, and two such cells shared a name."""
    specs = config.load(write_config(SWEEP))
    labels = [spec.label for spec in specs]
    assert all(len(label) <= LABEL_MAX for label in labels), labels
    assert [label.rsplit("_", 1)[1] for label in labels] == ["s0", "s4294967295"] * 2
    pattern = rf"deep_hidden=(100-)+10?\+([0-9a-f]{{{LABEL_HASH}}})_s\d+"
    matches = [re.fullmatch(pattern, label) for label in labels]
    assert all(matches), labels
    hashes = [m.group(2) for m in matches]
    assert hashes[0] == hashes[1] and hashes[2] == hashes[3] and hashes[0] != hashes[2]
    assert len(set(labels)) == 4


def test_the_hash_is_of_the_part_cut_off_and_the_seed_stays_whole():
    head = "x_key=" + "a" * 300
    label = fitted(head, "_s7")
    digest = hashlib.sha256(head[LABEL_KEEP:].encode()).hexdigest()[:LABEL_HASH]
    assert label == f"{head[:LABEL_KEEP]}+{digest}_s7"
    assert fitted(head, f"_s{2**32 - 1}") == f"{head[:LABEL_KEEP]}+{digest}_s{2**32 - 1}"
    assert len(fitted(head, f"_s{2**32 - 1}")) == LABEL_MAX  # the longest seed fits
    assert fitted(head + "b", "_s7") != label  # a different cut-off part, another name


def test_a_name_that_fits_is_unchanged_to_the_last_character():
    """Earlier runs' names stay what they were: only a name over LABEL_MAX changes."""
    head = "n_" + "v" * (LABEL_MAX - 2 - len("_s1"))
    assert fitted(head, "_s1") == head + "_s1" and len(head + "_s1") == LABEL_MAX
    assert "+" in fitted(head + "v", "_s1") and len(fitted(head + "v", "_s1")) < LABEL_MAX
    assert fitted("exp", "_s0") == "exp_s0"


def test_the_documented_cut_is_the_codes():
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "run-folder.md").read_text()
    assert LABEL_KEEP == 177 and "after its 177th character" in page
    assert f"first {LABEL_HASH} hex digits" in page and f"pass {LABEL_MAX} characters" in page


def test_short_labels_are_as_before(write_config):
    specs = config.load(write_config(
        "name: sw\nsweep:\n  grid:\n    model.bn.placement: [none]\n"
        "    optimizer.learning_rate: [0.1]\n"))
    assert [spec.label for spec in specs] == ["sw_placement=none_learning_rate=0.1_s0"]


def test_the_folder_keeps_seed_and_start_time_and_config_yaml_the_full_values(tmp_path,
                                                                               write_config):
    (spec, *_) = config.load(write_config(SWEEP))
    path = runs.create(tmp_path, spec.label)
    assert re.search(r"\+[0-9a-f]{10}_s0_\d{8}-\d{6}$", path.name), path.name
    assert len(path.name) <= runs.files.RUN_NAME_MAX
    runs.RunFolder(path).write_config(config.to_yaml(spec.config))
    assert yaml.safe_load((path / "config.yaml").read_text())["model"]["hidden"] == DEEP


def test_a_sweep_run_again_finds_its_runs_of_long_names_by_config_hash(tmp_path,
                                                                      write_config):
    """A sweep finds finished runs by config hash, never by folder name: runs named
    under the old rule (cut at 200 characters) are found as well as new ones."""
    specs = config.load(write_config(SWEEP))
    old = fake_run_rows(tmp_path, [{"train_loss": 1.0, "train_acc": 0.5, "test_acc": 0.5}],
                        name="deep", seed=0, model__arch="mlp", model__hidden=DEEP)
    reporter = Skips()
    outcomes, todo = plan(specs, tmp_path, False, reporter)
    assert [o.path for o in outcomes] == [old] and reporter.skipped == [old]
    assert [spec.label for spec, _ in todo] == [s.label for s in specs[1:]]
